-- wrk script for bench/api_load.py: POST /v1/records with one precomputed digest per request.
-- Usage: wrk -s bench/api_load.lua URL -- <api key>
-- Every request carries a distinct digest (thread number and a counter), so no two records are alike.
-- done() prints one line "CARELEDGER_WRK {json}" that bench/api_load.py parses.

-- `tid` is a global on purpose: setup() sets it in each thread's own Lua state with thread:set, which
-- a top-level `local tid` would hide (every thread then sent tid 0, so both threads sent the same digests).
local threads = {}
local counter = 0
local patient = "0x8ba1f109551bd432803012645ac136ddd64dba72"

function setup(thread)
   thread:set("tid", #threads + 1)
   table.insert(threads, thread)
end

function init(args)
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/json"
   wrk.headers["Authorization"] = "Bearer " .. args[1]
end

function request()
   counter = counter + 1
   local body = string.format('{"patient":"%s","digest":"0x%08x%056x"}', patient, tid, counter)
   return wrk.format(nil, nil, nil, body)
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'CARELEDGER_WRK {"requests":%d,"duration_us":%d,"non2xx":%d,"connect":%d,"read":%d,"write":%d,'
      .. '"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}\n',
      summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
