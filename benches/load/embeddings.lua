-- One embeddings call per request (POST /v1/embeddings) of two inputs, one with an e-mail
-- address; KT_KEY (if set) is the gateway key.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local key = os.getenv("KT_KEY")
if key then wrk.headers["Authorization"] = "Bearer " .. key end
wrk.body = '{"model":"text-embedding-3-small","input":["Summarize the notes from the planning meeting.","Mail them to jane.doe@example.com by Friday."]}'
