-- wrk script: each request takes the next use from the prepared file (bench/proxy/prep.py),
-- each wrk thread its own share, and posts it as a BLI query. Counts replies by status.
local uses_file = os.getenv("BENCH_USES")
local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  lines = {}
  local n = 0
  for line in io.lines(uses_file) do
    if n % tonumber(os.getenv("BENCH_WRK_THREADS") or "2") == id then
      table.insert(lines, line)
    end
    n = n + 1
  end
  pos = 0
  statuses = {}
  exhausted = 0
end

function request()
  pos = pos + 1
  local line = lines[pos]
  if not line then
    exhausted = exhausted + 1
    line = lines[1]
  end
  local token, rid, nid, item = line:match("(%S+) (%S+) (%S+) (%S+)")
  local body = '{"request_id":"' .. rid .. '","national_id":"' .. nid .. '","item":"' .. item .. '"}'
  return wrk.format("POST", "/v1/bli/queries",
                    {["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json"}, body)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    local s = t:get("statuses")
    for k, v in pairs(s) do total[k] = (total[k] or 0) + v end
  end
  local parts = {}
  for k, v in pairs(total) do table.insert(parts, k .. "=" .. v) end
  table.sort(parts)
  io.write("STATUSES " .. table.concat(parts, " ") .. "\n")
  io.write(string.format("LATENCY p50=%.2f p90=%.2f p99=%.2f max=%.2f\n", latency:percentile(50) / 1000,
                         latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
  io.write(string.format("RATE %.1f\n", summary.requests / (summary.duration / 1e6)))
end
