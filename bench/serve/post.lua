-- wrk script: POST one photo per request as multipart/form-data, cycling through the bodies that
-- bench/serve/run.py wrote (BODY_DIR/body-N.bin, BODY_COUNT of them, boundary BOUNDARY).
local dir = os.getenv("BODY_DIR")
local count = tonumber(os.getenv("BODY_COUNT"))
local boundary = os.getenv("BOUNDARY")
local requests = {}
local n = 0

function init(args)
  for i = 0, count - 1 do
    local f = assert(io.open(dir .. "/body-" .. i .. ".bin", "rb"))
    local body = f:read("*all")
    f:close()
    requests[i + 1] = wrk.format("POST", nil, {["Content-Type"] = "multipart/form-data; boundary=" .. boundary}, body)
  end
end

function request()
  n = n % count + 1
  return requests[n]
end
