import { callHook } from '../../src/shared/db/hooks';

describe('callHook', () => {
  it('logs and ignores a hook that throws', () => {
    const warn = jest.fn();

    callHook(() => { throw new TypeError('sync'); }, { n: 1 }, warn);

    expect(warn).toHaveBeenCalledWith('An observability hook threw; ignored.', { error: 'TypeError' });
  });

  it('logs and ignores an async hook that rejects, leaving no unhandled rejection', async () => {
    const warn = jest.fn();
    const rejected = Promise.reject(new RangeError('async'));
    const then = jest.spyOn(rejected, 'then');

    callHook(() => rejected, { n: 1 }, warn);
    await new Promise((resolve) => setImmediate(resolve));

    // A rejection handler on the hook's promise is what keeps Node from reporting it as unhandled.
    expect(then.mock.calls.map(([, onRejected]) => typeof onRejected)).toContain('function');
    expect(warn).toHaveBeenCalledWith('An observability hook threw; ignored.', { error: 'RangeError' });
  });

  it('hands the hook a frozen event', () => {
    let seen: unknown;

    callHook((event) => { seen = event; }, { n: 1 }, jest.fn());

    expect(Object.isFrozen(seen)).toBe(true);
  });
});
