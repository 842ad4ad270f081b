-- One Responses API call per request (POST /v1/responses): the same prompt as post.lua, with
-- instructions; KT_KEY (if set) is the gateway key.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local key = os.getenv("KT_KEY")
if key then wrk.headers["Authorization"] = "Bearer " .. key end
wrk.body = '{"model":"gpt-4o-mini","instructions":"You are a concise assistant.","input":"Summarize the notes from the planning meeting and mail them to jane.doe@example.com by Friday.","max_output_tokens":256}'
