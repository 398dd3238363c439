-- wrk script for every page of `make bench` (bench/run_pages.py runs it).
--
--   wrk ... -s bench/wrk/pages.lua URL -- MODE [SESSIONS_FILE] [REPLAY_FRACTION]
--
-- MODE "get":  GET the URL; with a sessions file, as the signed-in patients
--              one after the other (round-robin), sending their cookies.
-- MODE "log":  POST the session-log form as those patients: a fresh
--              idempotency key each time, except REPLAY_FRACTION of the
--              requests, which repeat that patient's last key (a double tap).
--
-- SESSIONS_FILE has one line per patient: "<sessionid> <csrftoken> [<zone>]",
-- the zone as the log form carries it (URL-encoded), posted with each tap.
-- done() prints one line, "BENCHJSON {...}", with the counts and the
-- latency percentiles in microseconds.

local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_number", #threads)
end

function init(args)
  mode = args[1] or "get"
  local sessions_file = args[2]
  replay_fraction = tonumber(args[3] or "0.1")
  sessions = {}
  if sessions_file and sessions_file ~= "" and sessions_file ~= "-" then
    for line in io.lines(sessions_file) do
      local sid, csrf, zone = line:match("^(%S+)%s+(%S+)%s*(%S*)$")
      if sid then
        table.insert(sessions, { sid = sid, csrf = csrf, zone = zone, last = nil })
      end
    end
  end
  math.randomseed(os.time() * 1000 + (thread_number or 0))
  -- Milliseconds for the keys' time field: this run's start, plus one per key.
  started_ms = os.time() * 1000
  counter = 0
  fresh = 0
  replays = 0
end

local function new_key()
  -- Shaped like the keys the log form carries (accounts/ids.py: a version 7
  -- UUID): the time in ms first, so each patient's keys come in order, then
  -- random bits. The time is this run's start plus one ms per key, so keys
  -- stay distinct and ordered whatever the clock's resolution.
  local ms = started_ms + counter
  return string.format(
    "%08x-%04x-7%03x-%04x-%06x%06x",
    math.floor(ms / 65536), ms % 65536, math.random(0, 0xfff),
    0x8000 + math.random(0, 0x3fff), math.random(0, 0xffffff), math.random(0, 0xffffff)
  )
end

function request()
  counter = counter + 1
  if #sessions == 0 then
    return wrk.format("GET")
  end
  local s = sessions[(counter % #sessions) + 1]
  local headers = { ["Cookie"] = "sessionid=" .. s.sid .. "; csrftoken=" .. s.csrf }
  if mode ~= "log" then
    return wrk.format("GET", nil, headers)
  end
  local key
  if s.last ~= nil and math.random() < replay_fraction then
    key = s.last
    replays = replays + 1
  else
    key = new_key()
    s.last = key
    fresh = fresh + 1
  end
  headers["Content-Type"] = "application/x-www-form-urlencoded"
  headers["X-CSRFToken"] = s.csrf
  local body = "idempotency_key=" .. key .. "&source=app"
  if s.zone ~= "" then
    body = body .. "&zone=" .. s.zone
  end
  return wrk.format("POST", nil, headers, body)
end

function done(summary, latency, requests)
  local total_fresh, total_replays = 0, 0
  for _, thread in ipairs(threads) do
    total_fresh = total_fresh + (thread:get("fresh") or 0)
    total_replays = total_replays + (thread:get("replays") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests": %d, "duration_us": %d, "bytes": %d, '
      .. '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, '
      .. '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f, '
      .. '"fresh_keys": %d, "replayed_keys": %d}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean, total_fresh, total_replays
  ))
end
