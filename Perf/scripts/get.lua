-- wrk script: GET /api/v1/item for a random key (key:1 … key:KEYS), eventual consistency.
local keys = tonumber(os.getenv("KEYS") or "100000")

function setup(thread)
  thread:set("seed", math.random(1, 1000000))
end

function init(args)
  math.randomseed(seed or os.time())
end

function request()
  return wrk.format("GET", "/api/v1/item?key=key:" .. math.random(1, keys))
end
