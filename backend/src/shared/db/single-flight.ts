// One in-flight load shared by every concurrent caller: 50 cold queries make one Secrets Manager call, one token
// signature. A settled load, fulfilled or rejected, is forgotten, so a failure is never cached.

/** Shares one pending promise among concurrent callers of run(). */
export class SingleFlight<T> {
  private current?: Promise<T>;

  /** The load in progress, if any. */
  get pending(): Promise<T> | undefined {
    return this.current;
  }

  /** Joins the load in progress, or starts `load`. */
  run(load: () => Promise<T>): Promise<T> {
    if (!this.current) {
      const flight = load().finally(() => {
        if (this.current === flight) this.current = undefined;
      });
      this.current = flight;
    }
    return this.current;
  }

  /** Forgets the load in progress; callers already waiting on it still get its result. */
  clear(): void {
    this.current = undefined;
  }
}
