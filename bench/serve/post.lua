-- wrk script: POST one photo per request as multipart/form-data, cycling through the bodies that
-- bench/serve/run.py wrote (BODY_DIR/body-N.bin, BODY_COUNT of them, boundary BOUNDARY). With PATHS (paths
-- separated by spaces) each photo is posted to every path in turn before the next photo (the multi-app rows).
local dir = os.getenv("BODY_DIR")
local count = tonumber(os.getenv("BODY_COUNT"))
local boundary = os.getenv("BOUNDARY")
local requests = {}
local n = 0
local paths = {}
for p in string.gmatch(os.getenv("PATHS") or "", "%S+") do
  paths[#paths + 1] = p
end

function init(args)
  for i = 0, count - 1 do
    local f = assert(io.open(dir .. "/body-" .. i .. ".bin", "rb"))
    local body = f:read("*all")
    f:close()
    local headers = {["Content-Type"] = "multipart/form-data; boundary=" .. boundary}
    for j = 1, math.max(#paths, 1) do
      requests[#requests + 1] = wrk.format("POST", paths[j], headers, body)
    end
  end
end

function request()
  n = n % #requests + 1
  return requests[n]
end
