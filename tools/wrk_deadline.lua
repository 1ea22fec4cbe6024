-- wrk script for tools/deadline_load.sh: POST $RANK_REQUEST to /rank as JSON and count the
-- answers by kind: full (200, "degraded":null), reduced_m, recall_only (200, degraded),
-- 503, 504 and other statuses, summed over wrk's threads.
local file = assert(io.open(os.getenv("RANK_REQUEST"), "rb"))
wrk.method = "POST"
wrk.body = file:read("*a")
wrk.headers["Content-Type"] = "application/json"
file:close()

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  full, reduced, recall_only, shed, late, other = 0, 0, 0, 0, 0, 0
end

function response(status, headers, body)
  if status == 200 then
    if string.find(body, '"degraded":null', 1, true) then
      full = full + 1
    elseif string.find(body, '"degraded":"reduced_m"', 1, true) then
      reduced = reduced + 1
    else
      recall_only = recall_only + 1
    end
  elseif status == 503 then
    shed = shed + 1
  elseif status == 504 then
    late = late + 1
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local t = {full = 0, reduced = 0, recall_only = 0, shed = 0, late = 0, other = 0}
  for _, thread in ipairs(threads) do
    for k, _ in pairs(t) do
      t[k] = t[k] + thread:get(k)
    end
  end
  local seconds = summary.duration / 1e6
  io.write(string.format(
    "answers: full %d, reduced_m %d, recall_only %d, 503 %d, 504 %d, other %d; goodput %.1f/s (200s), p50 %.1f ms, p99 %.1f ms, max %.1f ms\n",
    t.full, t.reduced, t.recall_only, t.shed, t.late, t.other,
    (t.full + t.reduced + t.recall_only) / seconds,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
