-- wrk script for bench/audit: inclusion proofs for random indices of a tree of BENCH_AUDIT_SIZE.
local size = tonumber(os.getenv("BENCH_AUDIT_SIZE"))
function init(args)
  math.randomseed(os.time() + math.random(1, 100000))
end
function request()
  return wrk.format("GET", string.format("/v1/audit/proofs/inclusion?index=%d&tree_size=%d",
    math.random(0, size - 1), size))
end
