-- wrk script: POST /track with a realistic event; the service generates each event_id.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"business_id":"bench-dental","conversation_id":"c-1","session_id":"s-1","response_time_ms":842.5,"tokens_used":512,"prompt_tokens":380,"completion_tokens":132,"api_cost_usd":0.000384,"model_name":"gemini-1.5-flash","intent_detected":"booking","response_type":"answer","appointment_requested":true,"appointment_booked":false,"human_handoff_requested":false,"user_message_length":64,"ai_response_length":420}'
