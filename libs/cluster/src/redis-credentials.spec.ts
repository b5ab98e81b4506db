import { RedisCredentialsError, credentialsErrorFor, isCredentialsError } from './redis-credentials.js';

describe('Redis credentials errors', () => {
  it('recognises the replies of a refused or missing password', () => {
    expect(
      isCredentialsError(new Error('WRONGPASS invalid username-password pair or user is disabled.')),
    ).toBe(true);
    expect(isCredentialsError(new Error('NOAUTH Authentication required.'))).toBe(true);
    expect(isCredentialsError(new Error('ERR AUTH <password> called without any password configured'))).toBe(
      true,
    );
    expect(isCredentialsError(new Error('connect ECONNREFUSED 127.0.0.1:6379'))).toBe(false);
  });

  it('says what to fix and never repeats the password or the AUTH command', () => {
    const reply = Object.assign(new Error('WRONGPASS invalid username-password pair or user is disabled.'), {
      command: { name: 'hello', args: ['3', 'AUTH', 'app', 'hunter2-secret'] },
    });
    const error = credentialsErrorFor('redis://app:hunter2-secret@10.0.0.9:6379', reply);
    expect(error).toBeInstanceOf(RedisCredentialsError);
    expect(error.message).toBe(
      'Redis at redis://app:***@10.0.0.9:6379 refused the credentials (WRONGPASS): check the user name and password in the URL',
    );
    expect(JSON.stringify({ ...error, message: error.message })).not.toContain('hunter2');
    expect(
      credentialsErrorFor('redis://10.0.0.9:6379', new Error('NOAUTH Authentication required.')).message,
    ).toMatch(/requires a password \(NOAUTH\)/);
  });
});
