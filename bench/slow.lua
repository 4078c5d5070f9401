-- bench/slow.lua -- wrk script of bench/slow.sh: the rig's lib/post.lua (the
-- request, and its "WRK ..." summary line) plus responses counted by status
-- inside a measured window, so that one wrk run holds the warm-up and the
-- measurement on the same connections.
--
-- Env: BENCH_POST_LUA (path of the rig's lib/post.lua; it reads BENCH_BODY,
-- BENCH_AUTH_HEADER, BENCH_EXTRA_HEADERS), BENCH_WIN_START_MS and
-- BENCH_WIN_END_MS (the window, in ms after the start of wrk's threads).
-- Prints, after post.lua's line, one line:
--   SLOW win_ok=.. win_503=.. win_503_ra=.. win_other=.. all_ok=.. all_503=.. all_503_ra=.. all_other=..
-- ok: 2xx; 503_ra: 503 carrying a Retry-After header; other: any other status.
local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } slow_timespec;
int clock_gettime(int clk, slow_timespec *ts);
]]
local CLOCK_MONOTONIC = 1
local ts = ffi.new("slow_timespec")
local function now_ms()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

dofile(assert(os.getenv("BENCH_POST_LUA"), "BENCH_POST_LUA is not set"))
local post_done = done

local KEYS = { "win_ok", "win_503", "win_503_ra", "win_other", "all_ok", "all_503", "all_503_ra", "all_other" }
local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

local win_start, win_end
function init(args)
  local t0 = now_ms()
  win_start = t0 + tonumber(os.getenv("BENCH_WIN_START_MS") or "0")
  win_end = t0 + tonumber(os.getenv("BENCH_WIN_END_MS") or "1e12")
  for _, k in ipairs(KEYS) do _G[k] = 0 end
end

function response(status, headers, body)
  local t = now_ms()
  local in_win = t >= win_start and t < win_end
  local kind
  if status >= 200 and status < 300 then
    kind = "ok"
  elseif status == 503 then
    kind = "503"
    for k, _ in pairs(headers) do
      if string.lower(k) == "retry-after" then kind = "503_ra"; break end
    end
  else
    kind = "other"
  end
  if kind == "503_ra" then
    all_503 = all_503 + 1
    if in_win then win_503 = win_503 + 1 end
  end
  _G["all_" .. kind] = _G["all_" .. kind] + 1
  if in_win then _G["win_" .. kind] = _G["win_" .. kind] + 1 end
end

function done(summary, latency, requests)
  post_done(summary, latency, requests)
  local out = {}
  for _, k in ipairs(KEYS) do
    local n = 0
    for _, t in ipairs(threads) do n = n + (tonumber(t:get(k)) or 0) end
    table.insert(out, k .. "=" .. n)
  end
  io.write("SLOW " .. table.concat(out, " ") .. "\n")
end
