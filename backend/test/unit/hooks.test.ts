import { callHook } from '../../src/shared/db/hooks';

describe('callHook', () => {
  it('logs and ignores a hook that throws', () => {
    const warn = jest.fn();

    callHook(() => { throw new TypeError('sync'); }, { n: 1 }, warn);

    expect(warn).toHaveBeenCalledWith('An observability hook threw; ignored.', { error: 'TypeError' });
  });

  it('logs and ignores an async hook that rejects, leaving no unhandled rejection', async () => {
    const warn = jest.fn();
    const unhandled = jest.fn();
    process.on('unhandledRejection', unhandled);
    try {
      callHook(async () => { throw new RangeError('async'); }, { n: 1 }, warn);
      await new Promise((resolve) => setImmediate(resolve));

      expect(warn).toHaveBeenCalledWith('An observability hook threw; ignored.', { error: 'RangeError' });
      expect(unhandled).not.toHaveBeenCalled();
    } finally {
      process.off('unhandledRejection', unhandled);
    }
  });

  it('hands the hook a frozen event', () => {
    let seen: unknown;

    callHook((event) => { seen = event; }, { n: 1 }, jest.fn());

    expect(Object.isFrozen(seen)).toBe(true);
  });
});
