// The module's own JSON log lines: one object per line whose level, source and message no field can overwrite, so a
// filter on `source` finds every line the module writes.
import { createLogger } from '../../src/shared/db/log';

describe('createLogger without a logger of the caller', () => {
  it("keeps the line's level, source and message when a field has the same name", () => {
    const printed = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      createLogger('warn').warn('Something happened.', { source: 'secret app/db', level: 'DEBUG', message: 'other', ageMillis: 5 });

      expect(printed).toHaveBeenCalledTimes(1);
      expect(JSON.parse(String(printed.mock.calls[0][0]))).toEqual({ level: 'WARN', source: 'lambda-pg', message: 'Something happened.', ageMillis: 5 });
    } finally {
      printed.mockRestore();
    }
  });
});
