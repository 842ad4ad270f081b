-- One chat completion per request; KT_KEY (if set) is the gateway key.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local key = os.getenv("KT_KEY")
if key then wrk.headers["Authorization"] = "Bearer " .. key end
wrk.body = '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Summarize the notes from the planning meeting and mail them to jane.doe@example.com by Friday."}]}'
