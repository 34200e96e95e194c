// The BEGIN statement withTransaction sends: the isolation level and access mode asked for, and a clear error for a
// level that is not one of the three, including names every object inherits.
import { ConfigurationError } from '../../src/shared/db/errors';
import { beginStatement } from '../../src/shared/db/transaction';

describe('beginStatement', () => {
  it('adds the isolation level and READ ONLY when asked', () => {
    expect(beginStatement({})).toBe('BEGIN');
    expect(beginStatement({ isolationLevel: 'serializable', readOnly: true })).toBe('BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY');
    expect(beginStatement({ isolationLevel: 'read committed' })).toBe('BEGIN ISOLATION LEVEL READ COMMITTED');
  });

  it.each(['snapshot', 'toString', 'constructor', '__proto__'])('rejects the isolation level "%s" with a ConfigurationError naming the three', (level) => {
    const begin = () => beginStatement({ isolationLevel: level as never });

    expect(begin).toThrow(ConfigurationError);
    expect(begin).toThrow(`Expected isolationLevel to be one of read committed, repeatable read, serializable, got "${level}".`);
  });
});
