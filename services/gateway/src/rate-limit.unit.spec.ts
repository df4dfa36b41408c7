import { describe, expect, it } from 'vitest';
import { authRules, decide, usernameBucket } from './rate-limit.js';

describe('rate limit decisions', () => {
  const rules = [
    { key: 'ip', limit: 3 },
    { key: 'user', limit: 2 },
  ];
  it('allows while every counter is within its limit', () => {
    expect(decide(rules, [3, 50_000, 2, 40_000])).toEqual({ allowed: true, retryAfterSeconds: 0 });
  });
  it('refuses over any limit with the longest remaining window, rounded up', () => {
    expect(decide(rules, [1, 50_000, 3, 40_001])).toEqual({ allowed: false, retryAfterSeconds: 41 });
    expect(decide(rules, [4, 59_000, 3, 2_000])).toEqual({ allowed: false, retryAfterSeconds: 59 });
    expect(decide(rules, [4, 0, 0, 0])).toEqual({ allowed: false, retryAfterSeconds: 1 });
  });
  it('buckets usernames ignoring case and compatibility forms', () => {
    expect(usernameBucket('Alice')).toBe(usernameBucket('aLICE'));
    expect(usernameBucket('ａlice')).toBe(usernameBucket('alice')); // fullwidth a (NFKC)
    expect(usernameBucket('alice')).not.toBe(usernameBucket('bob'));
    expect(usernameBucket('x\u0000\n'.repeat(20))).toMatch(/^[A-Za-z0-9_-]{22}$/);
  });
  it('limits per address, per username from one address, and per username from all addresses (ten times that)', () => {
    const [ip, userHere, user] = authRules({ perIp: 30, perUsername: 10 }, '10.0.0.1', 'Bob');
    const other = authRules({ perIp: 30, perUsername: 10 }, '10.0.0.2', 'bob');
    expect(ip).toEqual({ key: 'gw:rl:auth:ip:10.0.0.1', limit: 30 });
    expect(userHere?.limit).toBe(10);
    expect(userHere?.key).not.toBe(other[1]?.key);
    expect(user?.limit).toBe(100);
    expect(user?.key).toBe(other[2]?.key);
  });
});
