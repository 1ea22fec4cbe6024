-- wrk script: POST the request file named by $RANK_REQUEST to /rank as JSON.
local file = assert(io.open(os.getenv("RANK_REQUEST") or "examples/rank_request.json", "rb"))
wrk.method = "POST"
wrk.body = file:read("*a")
wrk.headers["Content-Type"] = "application/json"
file:close()

-- Count non-200 answers, so a run with errors cannot pass for a fast one.
local failures = 0
function response(status, headers, body)
  if status ~= 200 then failures = failures + 1 end
end
function done(summary, latency, requests)
  io.write(string.format("non-200 responses: %d\n", summary.errors.status))
end
