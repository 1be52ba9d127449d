-- wrk script for bench/audit: POST /internal/events with batches of BENCH_AUDIT_BATCH new
-- events (unique ids per request), bearer token from BENCH_AUDIT_TOKEN.
local batch = tonumber(os.getenv("BENCH_AUDIT_BATCH") or "500")
local token = os.getenv("BENCH_AUDIT_TOKEN")
local counter = 0
local prefix

function setup(thread)
  thread:set("tid", math.random(0, 0xffff))
end

function init(args)
  math.randomseed(os.time() + (tid or 0))
  prefix = string.format("%08x-%04x-4%03x", math.random(0, 0x7fffffff), tid or 0, math.random(0, 0xfff))
end

function request()
  local parts = {}
  for i = 1, batch do
    counter = counter + 1
    parts[i] = string.format(
      '{"id":"%s-8%03x-%012x","type":"bench.event","time":"2026-01-01T00:00:00Z","outcome":"success",' ..
      '"actor":{"client_id":"bench%d"},"object":{"kind":"bench","id":"%d"},"request_id":"bench-%d",' ..
      '"details":{"n":%d,"note":"a benchmark event of roughly the size of a real one"}}',
      prefix, math.random(0, 0xfff), counter, counter % 500, counter, counter, counter)
  end
  local body = '{"events":[' .. table.concat(parts, ",") .. ']}'
  return wrk.format("POST", "/internal/events",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token}, body)
end

local errors = 0
function response(status, headers, body)
  if status ~= 200 then
    errors = errors + 1
    if errors < 5 then io.stderr:write("status " .. status .. ": " .. body:sub(1, 200) .. "\n") end
  end
end
