-- shekel's ledger on Redis: every operation on a chain of accounts is one call of this script,
-- so it applies to the whole chain atomically, on the server's clock.
--
-- ARGV[1] operation, ARGV[2] key prefix, ARGV[3] how long settled hold ids are remembered (ms),
-- ARGV[4] n, the number of accounts (KEYS[1..n], innermost first), then six values per account
-- (its four caps, "" for none; its caps as JSON, shown by `shekel budgets`; the time it may be
-- forgotten, ms since the epoch, "" for never), then four amounts (usd in nano-dollars,
-- tokens, llm calls, tool calls), then the operation's own arguments.
--
-- Accounts are hashes `<prefix>a:<key>` (fields usd tokens calls tools, r_usd r_tokens r_calls
-- r_tools for what is held, epoch, caps, keep). A live hold is a hash `<prefix>h:<id>` and a
-- member of the sorted set `<prefix>live` scored by its expiry; once it expired or settled,
-- `<prefix>h:<id>` is a string ("expired", or "settled" and what the commit returned) that
-- lives for ARGV[3] ms. Retried operations find `<prefix>op:<id>` and return what they
-- returned the first time.
--
-- Amounts are non-negative integers kept as decimal strings: Lua numbers are doubles, exact
-- only below 2^53, and one amount may be 10^18 nano-dollars.

-- Writes after TIME replicate as their effects (the default since Redis 5; asked for on older).
if redis.replicate_commands then redis.replicate_commands() end

local op = ARGV[1]
local P = ARGV[2]
local memory = ARGV[3]
local n = tonumber(ARGV[4])
local USED = {'usd', 'tokens', 'calls', 'tools'}
local HELD = {'r_usd', 'r_tokens', 'r_calls', 'r_tools'}
local LIVE = P .. 'live'
local CHUNK = 1e14

-- -- integers as decimal strings --------------------------------------------------------------

local function strip(s)
  s = string.gsub(s, '^0+', '')
  if s == '' then return '0' end
  return s
end

local function cmp(a, b)
  if #a ~= #b then
    if #a < #b then return -1 end
    return 1
  end
  for k = 1, #a, 14 do
    local x, y = tonumber(string.sub(a, k, k + 13)), tonumber(string.sub(b, k, k + 13))
    if x ~= y then
      if x < y then return -1 end
      return 1
    end
  end
  return 0
end

local function chunk(s, i)
  if i < 1 then return 0 end
  return tonumber(string.sub(s, math.max(i - 13, 1), i))
end

local function add(a, b)
  if b == '0' then return a end
  if #a < 16 and #b < 16 then return string.format('%.0f', tonumber(a) + tonumber(b)) end
  local parts, carry, ia, ib = {}, 0, #a, #b
  while ia > 0 or ib > 0 or carry > 0 do
    local x = chunk(a, ia) + chunk(b, ib) + carry
    if x >= CHUNK then
      x, carry = x - CHUNK, 1
    else
      carry = 0
    end
    table.insert(parts, 1, string.format('%014.0f', x))
    ia, ib = ia - 14, ib - 14
  end
  return strip(table.concat(parts))
end

-- a - b, or 0 when b > a (a held amount is never given back twice, so that is never the case)
local function sub(a, b)
  if b == '0' then return a end
  if cmp(a, b) <= 0 then return '0' end
  if #a < 16 then return string.format('%.0f', tonumber(a) - tonumber(b)) end
  local parts, borrow, ia, ib = {}, 0, #a, #b
  while ia > 0 do
    local x = chunk(a, ia) - chunk(b, ib) - borrow
    if x < 0 then
      x, borrow = x + CHUNK, 1
    else
      borrow = 0
    end
    table.insert(parts, 1, string.format('%014.0f', x))
    ia, ib = ia - 14, ib - 14
  end
  return strip(table.concat(parts))
end

-- -- the arguments -----------------------------------------------------------------------------

local caps, info, keep = {}, {}, {}
for i = 1, n do
  local b = 4 + (i - 1) * 6
  caps[i] = {ARGV[b + 1], ARGV[b + 2], ARGV[b + 3], ARGV[b + 4]}
  info[i] = ARGV[b + 5]
  keep[i] = ARGV[b + 6]
end
local rest = 4 + n * 6
local amounts = {ARGV[rest + 1], ARGV[rest + 2], ARGV[rest + 3], ARGV[rest + 4]}
local tail = rest + 4 -- ARGV[tail + 1]... are the operation's own

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- -- accounts ----------------------------------------------------------------------------------

local FIELDS = {'usd', 'tokens', 'calls', 'tools', 'r_usd', 'r_tokens', 'r_calls', 'r_tools',
  'epoch'}

-- an account's counters, each a whole number written in digits; any other value (edited by hand,
-- or damaged) refuses the operation, so that this account's budgets fail closed, and no other's
local function row(key)
  local r = redis.call('HMGET', key, unpack(FIELDS))
  for x = 1, 9 do
    if not r[x] then
      r[x] = '0'
    elseif not string.match(r[x], '^%d+$') then
      error('shekel: account ' .. string.sub(key, #P + 3) .. ' holds ' .. FIELDS[x] .. '=' ..
        r[x] .. ', which is not a whole number >= 0; fix the hash, or zero it with shekel reset')
    end
    r[x] = strip(r[x])
  end
  return r
end

-- refuse before anything is written when an account of the chain is damaged
local function check_rows()
  for i = 1, n do row(KEYS[i]) end
end

local function touch(i)
  -- the caps the account is held to (for `shekel budgets`), and when it may be forgotten
  local key = KEYS[i]
  if info[i] ~= '' then redis.call('HSET', key, 'caps', info[i]) end
  if keep[i] ~= '' then
    redis.call('HSET', key, 'keep', keep[i])
    redis.call('PEXPIREAT', key, keep[i])
  end
end

local function add_to(fields)
  local base = 0
  if fields == HELD then base = 4 end
  for i = 1, n do
    local r = row(KEYS[i])
    local changes = {}
    for x = 1, 4 do
      if amounts[x] ~= '0' then
        changes[#changes + 1] = fields[x]
        changes[#changes + 1] = add(r[base + x], amounts[x])
      end
    end
    if #changes > 0 then redis.call('HSET', KEYS[i], unpack(changes)) end
    touch(i)
  end
end

-- the first account that cannot take the amounts: {position (0-based), axis (1-4), used}
local function refusal(need_headroom)
  for i = 1, n do
    local r = row(KEYS[i])
    for x = 1, 4 do
      local cap = caps[i][x]
      if cap ~= '' then
        local taken = add(r[x], r[x + 4])
        if cmp(add(taken, amounts[x]), cap) > 0 or (need_headroom and x <= 2 and cmp(taken, cap) >= 0) then
          return {i - 1, x, r[x]}
        end
      end
    end
  end
  return nil
end

-- the first account whose used amount is over its cap, after spend was added
local function over_used()
  for i = 1, n do
    local r = row(KEYS[i])
    for x = 1, 4 do
      local cap = caps[i][x]
      if cap ~= '' and cmp(r[x], cap) > 0 then
        return {i - 1, x, r[x]}
      end
    end
  end
  return nil
end

-- -- holds -------------------------------------------------------------------------------------

local function hold_key(id)
  return P .. 'h:' .. id
end

-- take a live hold's amounts off the accounts that have not been reset since it was taken;
-- everything is read and checked before anything is written (an error leaves no half)
local function unhold(hk)
  local h = redis.call('HMGET', hk, 'keys', 'epochs', 'usd', 'tokens', 'calls', 'tools')
  local keys, epochs = cjson.decode(h[1]), cjson.decode(h[2])
  for x = 3, 6 do
    if not (h[x] and string.match(h[x], '^%d+$')) then error('shekel: damaged hold ' .. hk) end
    h[x] = strip(h[x])
  end
  local changes = {}
  for i, key in ipairs(keys) do
    if redis.call('EXISTS', key) == 1 then
      local r = row(key)
      if tonumber(r[9]) == epochs[i] then
        local fields = {}
        for x = 1, 4 do
          if h[x + 2] ~= '0' then
            fields[#fields + 1] = HELD[x]
            fields[#fields + 1] = sub(r[x + 4], h[x + 2])
          end
        end
        if #fields > 0 then changes[#changes + 1] = {key, fields} end
      end
    end
  end
  for _, change in ipairs(changes) do
    redis.call('HSET', change[1], unpack(change[2]))
  end
end

local function forget(hk, id, state)
  redis.call('DEL', hk)
  redis.call('SET', hk, state, 'PX', memory)
  redis.call('ZREM', LIVE, id)
end

-- drop up to `limit` holds whose time ran out; how many
local function sweep(now, limit)
  local due = redis.call('ZRANGEBYSCORE', LIVE, '-inf', now, 'LIMIT', 0, limit)
  for _, id in ipairs(due) do
    local hk = hold_key(id)
    if redis.call('TYPE', hk).ok == 'hash' then
      -- a damaged hold cannot say what it held: its room stays taken on its accounts (those
      -- budgets fail closed), and the sweep, which every operation runs, goes on
      pcall(unhold, hk)
      forget(hk, id, 'expired')
    else
      redis.call('ZREM', LIVE, id)
    end
  end
  return #due
end

local SWEEP = 32

-- -- replies -----------------------------------------------------------------------------------

local function encode(over)
  if over == nil then return 'ok' end
  return 'over|' .. over[1] .. '|' .. over[2] .. '|' .. over[3]
end

local function reply(text)
  local parts = {}
  for part in string.gmatch(text, '[^|]+') do parts[#parts + 1] = part end
  return parts
end

-- an operation retried after a lost reply returns what the first attempt did
local function once(id, fn)
  local mark = P .. 'op:' .. id
  local seen = redis.call('GET', mark)
  if seen then return reply(seen) end
  local text = encode(fn())
  redis.call('SET', mark, text, 'PX', ARGV[tail + 2])
  return reply(text)
end

-- -- operations --------------------------------------------------------------------------------

if op == 'record' then
  return once(ARGV[tail + 1], function()
    check_rows()
    add_to(USED)
    return over_used()
  end)
end

if op == 'try_record' then
  return once(ARGV[tail + 1], function()
    sweep(now_ms(), SWEEP)
    local refused = refusal(false)
    if refused == nil then add_to(USED) end
    return refused
  end)
end

if op == 'reserve' then
  local id, need_headroom, ttl = ARGV[tail + 1], ARGV[tail + 2] == '1', ARGV[tail + 3]
  local hk = hold_key(id)
  local kind = redis.call('TYPE', hk).ok
  if kind == 'hash' then -- a retry of a reserve that went through
    return {'held', redis.call('HGET', hk, 'epochs'), redis.call('HGET', hk, 'expires')}
  end
  if kind ~= 'none' then -- ...and expired since
    return {'held', '[]', '0'}
  end
  local now = now_ms()
  sweep(now, SWEEP)
  local refused = refusal(need_headroom)
  if refused ~= nil then return reply(encode(refused)) end
  add_to(HELD)
  local epochs = {}
  for i = 1, n do
    epochs[i] = tonumber(redis.call('HGET', KEYS[i], 'epoch') or '0')
  end
  local expires = string.format('%.0f', now + tonumber(ttl))
  local epoch_list = cjson.encode(epochs)
  redis.call('HSET', hk, 'keys', cjson.encode(KEYS), 'epochs', epoch_list, 'usd', amounts[1],
    'tokens', amounts[2], 'calls', amounts[3], 'tools', amounts[4], 'expires', expires)
  redis.call('ZADD', LIVE, expires, id)
  return {'held', epoch_list, expires}
end

if op == 'commit' then
  local id = ARGV[tail + 1]
  local hk = hold_key(id)
  local kind = redis.call('TYPE', hk).ok
  if kind == 'string' then
    local state = redis.call('GET', hk)
    if string.sub(state, 1, 7) == 'settled' then
      return reply('done|' .. string.sub(state, 9)) -- committed or released already
    end
  end
  check_rows()
  if kind == 'hash' then
    pcall(unhold, hk) -- a damaged hold keeps its room taken; the spend is recorded all the same
  end
  -- a hold that expired, or that the server no longer knows: its spend happened all the same
  add_to(USED)
  local text = encode(over_used())
  forget(hk, id, 'settled|' .. text)
  return reply(text)
end

if op == 'release' then
  local id = ARGV[tail + 1]
  local hk = hold_key(id)
  local kind = redis.call('TYPE', hk).ok
  if kind == 'hash' then
    unhold(hk)
  elseif kind == 'string' and string.sub(redis.call('GET', hk), 1, 7) == 'settled' then
    return 'done'
  end
  forget(hk, id, 'settled|ok')
  return 'ok'
end

if op == 'check' then
  sweep(now_ms(), SWEEP)
  return reply(encode(refusal(ARGV[tail + 1] == '1')))
end

if op == 'rows' then -- every account's counters, after dropping expired holds
  sweep(now_ms(), SWEEP)
  local out = {}
  for i = 1, n do
    local r = row(KEYS[i])
    for x = 1, 8 do out[#out + 1] = r[x] end
  end
  return out
end

if op == 'reset' then
  for i = 1, n do
    redis.call('HSET', KEYS[i], 'usd', '0', 'tokens', '0', 'calls', '0', 'tools', '0', 'r_usd',
      '0', 'r_tokens', '0', 'r_calls', '0', 'r_tools', '0')
    redis.call('HINCRBY', KEYS[i], 'epoch', 1)
    touch(i)
  end
  return n
end

if op == 'renew' then -- ARGV[tail + 1...]: hold id, new ttl (ms), for each hold
  local now = now_ms()
  local renewed = 0
  for k = tail + 1, #ARGV, 2 do
    local id = ARGV[k]
    local hk = hold_key(id)
    if redis.call('TYPE', hk).ok == 'hash' then
      local expires = string.format('%.0f', now + tonumber(ARGV[k + 1]))
      redis.call('HSET', hk, 'expires', expires)
      redis.call('ZADD', LIVE, expires, id)
      renewed = renewed + 1
    end
  end
  return renewed
end

if op == 'expire' then
  return sweep(now_ms(), tonumber(ARGV[tail + 1]))
end

return redis.error_reply('shekel ledger script: unknown operation ' .. tostring(op))
