-- wrk script: POST /api/v1/item with a random key (key:1 … key:KEYS) and a 100-byte value.
local keys = tonumber(os.getenv("KEYS") or "100000")
-- 100 bytes of 'x', base64-encoded (136 characters).
local value = string.rep("eHh4", 33) .. "eA=="

function setup(thread)
  thread:set("seed", math.random(1, 1000000))
end

function init(args)
  math.randomseed(seed or os.time())
end

function request()
  local body = '{"key":"key:' .. math.random(1, keys) .. '","value":"' .. value .. '"}'
  return wrk.format("POST", "/api/v1/item", { ["Content-Type"] = "application/json" }, body)
end
