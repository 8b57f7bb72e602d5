"""Byte-exact conformance-case data from wire.md section 10 (generated from the spec; do not hand-edit).

CASES["C05"] is the list of code blocks of case C05, as bytes, in the order the spec gives them
(Python `b"..."` literals already evaluated; inline `{...}` bodies appended). NAMED holds the
sample streams of sections 2.4, 3.4, 4.4, 5.4 and 6.1 that cases refer to.
"""

CASES: dict[str, list[bytes]] = {
    'C01': [
        b'HTTP/1.1 200 OK\ncontent-type: application/json\nrequest-id: req_fake_c01\nanthropic-ratelimit-requests-limit: 1000\nanthropic-ratelimit-requests-remaining: 999\nanthropic-ratelimit-requests-reset: 2026-01-01T00:00:01Z\n\n{"id":"msg_fake_c01","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"Hello there!"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":12,"cache_creation_input_tokens":0,"cache_read_input_tokens":2048,"cache_creation":{"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":0},"output_tokens":6,"service_tier":"standard"}}\n',
    ],
    'C02': [
    ],
    'C03': [
        b'event: message_stop\ndata: {"type":"message_stop"}\n\n',
    ],
    'C04': [
        b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_fake_c04","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":30,"output_tokens":1}}}\n\nevent: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}\n\nevent: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Check the file first."}}\n\nevent: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"RmFrZVNpZ25hdHVyZQ=="}}\n\nevent: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\nevent: content_block_start\ndata: {"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}\n\nevent: content_block_delta\ndata: {"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Done."}}\n\nevent: content_block_stop\ndata: {"type":"content_block_stop","index":1}\n\nevent: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":40,"output_tokens_details":{"thinking_tokens":31}}}\n\nevent: message_stop\ndata: {"type":"message_stop"}\n\n',
    ],
    'C05': [
        b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_fake_c05","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":11,"output_tokens":1}}}\n\nevent: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\n\nevent: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hel"}}\n\nevent: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"lo"}}\n\nevent: error\ndata: {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}\n\n',
    ],
    'C06': [
    ],
    'C07': [
        b'HTTP/1.1 529 \ncontent-type: application/json\nrequest-id: req_fake_c07a\nx-should-retry: true\n\n{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_fake_c07a"}\n',
    ],
    'C08': [
        b'HTTP/1.1 429 Too Many Requests\ncontent-type: application/json\nrequest-id: req_fake_c08\nretry-after: 2\nanthropic-ratelimit-requests-limit: 50\nanthropic-ratelimit-requests-remaining: 0\nanthropic-ratelimit-requests-reset: 2026-01-01T00:00:02Z\nanthropic-ratelimit-input-tokens-limit: 30000\nanthropic-ratelimit-input-tokens-remaining: 0\nanthropic-ratelimit-input-tokens-reset: 2026-01-01T00:00:02Z\n\n{"type":"error","error":{"type":"rate_limit_error","message":"Rate limit exceeded for input tokens per minute (fake)."},"request_id":"req_fake_c08"}\n',
    ],
    'C09': [
        b'HTTP/1.1 429 Too Many Requests\ncontent-type: application/json\nrequest-id: req_fake_c09\nx-should-retry: false\n\n{"type":"error","error":{"type":"rate_limit_error","message":"Monthly usage limit for your tier has been reached (fake).","details":{"error_code":"enforced_spend_limit_reached"}},"request_id":"req_fake_c09"}\n',
    ],
    'C10': [
        b'HTTP/1.1 400 Bad Request\ncontent-type: application/json\nrequest-id: req_fake_c10\nx-should-retry: false\n\n{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 208310 tokens > 200000 maximum"},"request_id":"req_fake_c10"}\n',
    ],
    'C11': [
        b'HTTP/1.1 400 Bad Request\ncontent-type: application/json\nrequest-id: req_fake_c11\n\n{"type":"error","error":{"type":"invalid_request_error","message":"input length and `max_tokens` exceed context limit: 199759 + 8192 > 200000, decrease input length or `max_tokens` and try again"},"request_id":"req_fake_c11"}\n',
    ],
    'C12': [
        b'HTTP/1.1 401 Unauthorized\ncontent-type: application/json\nrequest-id: req_fake_c12\n\n{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"},"request_id":"req_fake_c12"}\n',
    ],
    'C13': [
        b'HTTP/1.1 400 Bad Request\ncontent-type: application/json\nrequest-id: req_fake_c13\n\n{"type":"error","error":{"type":"invalid_request_error","message":"temperature: Extra inputs are not permitted"},"request_id":"req_fake_c13"}\n',
    ],
    'C14': [
        b'HTTP/1.1 200 OK\ncontent-type: application/json\n\n{"id":"msg_fake_c14","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"The answer is a very long"}],"stop_reason":"max_tokens","stop_sequence":null,"usage":{"input_tokens":20,"output_tokens":8}}\n',
    ],
    'C15': [
        b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"stop_sequence","stop_sequence":"\\nHuman:"},"usage":{"output_tokens":6}}\n\n',
    ],
    'C16': [
        b'event: content_block_metadata\ndata: {"type":"content_block_metadata","index":0,"foo":{"bar":1}}\n\n',
    ],
    'C17': [
    ],
    'C18': [
        b'HTTP/1.1 520 \ncontent-type: text/html\n\n<html><head><title>520: Web server is returning an unknown error</title></head><body>fake</body></html>\n',
    ],
    'C19': [
        b'HTTP/1.1 200 OK\ncontent-type: application/json\n\n{"data":[{"type":"model","id":"claude-opus-fake","display_name":"Claude Opus (fake)","created_at":"2025-11-01T00:00:00Z","max_input_tokens":200000,"max_tokens":64000}],"has_more":true,"first_id":"claude-opus-fake","last_id":"claude-opus-fake"}\n',
        b'{"data":[{"type":"model","id":"claude-haiku-fake","display_name":"Claude Haiku (fake)","created_at":"2025-10-01T00:00:00Z"}],"has_more":false,"first_id":"claude-haiku-fake","last_id":"claude-haiku-fake"}',
    ],
    'C20': [
        b'HTTP/1.1 200 OK\ncontent-type: application/json\nx-request-id: req_fake_c20\n\n{"id":"chatcmpl-fake20","object":"chat.completion","created":1761000000,"model":"gpt-5","choices":[{"index":0,"message":{"role":"assistant","content":"Hello there!","refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":2100,"completion_tokens":70,"total_tokens":2170,"prompt_tokens_details":{"cached_tokens":1920,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":64,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},"service_tier":"default","system_fingerprint":null}\n',
    ],
    'C21': [
    ],
    'C22': [
        b'data: {"id":"chatcmpl-fake22","object":"chat.completion.chunk","created":1761000000,"model":"gpt-5","choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_A","type":"function","function":{"name":"read_file","arguments":""}}]},"finish_reason":null}],"usage":null}\n\ndata: {"id":"chatcmpl-fake22","object":"chat.completion.chunk","created":1761000000,"model":"gpt-5","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\\"path\\":\\"a.py\\"}"}}]},"finish_reason":null}],"usage":null}\n\ndata: {"id":"chatcmpl-fake22","object":"chat.completion.chunk","created":1761000000,"model":"gpt-5","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_B","type":"function","function":{"name":"read_file","arguments":"{\\"path\\":"}}]},"finish_reason":null}],"usage":null}\n\ndata: {"id":"chatcmpl-fake22","object":"chat.completion.chunk","created":1761000000,"model":"gpt-5","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":"\\"b.py\\"}"}}]},"finish_reason":null}],"usage":null}\n\ndata: {"id":"chatcmpl-fake22","object":"chat.completion.chunk","created":1761000000,"model":"gpt-5","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}],"usage":null}\n\ndata: {"id":"chatcmpl-fake22","object":"chat.completion.chunk","created":1761000000,"model":"gpt-5","choices":[],"usage":{"prompt_tokens":50,"completion_tokens":30,"total_tokens":80}}\n\ndata: [DONE]\n\n',
    ],
    'C23': [
        b'data: {"id":"chatcmpl-fake23","object":"chat.completion.chunk","created":1761000000,"model":"gpt-5","choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"},"finish_reason":null}],"usage":null}\n\ndata: {"error":{"message":"The server had an error while processing your request. Sorry about that!","type":"server_error","param":null,"code":null}}\n\n',
    ],
    'C24': [
        b'HTTP/1.1 429 Too Many Requests\ncontent-type: application/json\nx-request-id: req_fake_c24\nretry-after: 2\nx-ratelimit-limit-requests: 500\nx-ratelimit-remaining-requests: 0\nx-ratelimit-reset-requests: 1.2s\nx-ratelimit-limit-tokens: 30000\nx-ratelimit-remaining-tokens: 0\nx-ratelimit-reset-tokens: 6m0s\n\n{"error":{"message":"Rate limit reached for gpt-5 in organization org-fake on tokens per min (TPM): Limit 30000, Used 29000, Requested 2000. Please try again in 2s.","type":"tokens","param":null,"code":"rate_limit_exceeded"}}\n',
    ],
    'C25': [
    ],
    'C26': [
        b'HTTP/1.1 429 Too Many Requests\ncontent-type: application/json\n\n{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}\n',
    ],
    'C27': [
        b'HTTP/1.1 429 Too Many Requests\ncontent-type: application/json\n\n{"error":{"message":"Request too large for gpt-5 in organization org-fake on tokens per min (TPM): Limit 30000, Requested 30601. The input or output tokens must be reduced in order to run successfully.","type":"tokens","param":null,"code":"rate_limit_exceeded"}}\n',
    ],
    'C28': [
        b'HTTP/1.1 400 Bad Request\ncontent-type: application/json\n\n{"error":{"message":"This model\'s maximum context length is 128000 tokens. However, your messages resulted in 130517 tokens. Please reduce the length of the messages.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}\n',
    ],
    'C29': [
        b'HTTP/1.1 400 Bad Request\ncontent-type: application/json\n\n{"error":{"message":"Your input exceeds the context window of this model. Please adjust your input and try again.","type":"invalid_request_error","param":"input","code":"context_length_exceeded"}}\n',
    ],
    'C30': [
        b'HTTP/1.1 400 Bad Request\ncontent-type: application/json\n\n{"error":{"message":"Unsupported parameter: \'max_tokens\' is not supported with this model. Use \'max_completion_tokens\' instead.","type":"invalid_request_error","param":"max_tokens","code":"unsupported_parameter"}}\n',
    ],
    'C31': [
        b'HTTP/1.1 401 Unauthorized\ncontent-type: application/json\n\n{"error":{"message":"Incorrect API key provided: sk-fake****1234.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}\n',
    ],
    'C32': [
        b'HTTP/1.1 404 Not Found\ncontent-type: application/json\n\n{"error":{"message":"The model `gpt-nope` does not exist or you do not have access to it.","type":"invalid_request_error","param":null,"code":"model_not_found"}}\n',
    ],
    'C33': [
        b'HTTP/1.1 503 Service Unavailable\ncontent-type: application/json\n\n{"error":{"message":"The engine is currently overloaded, please try again later.","type":"server_error","param":null,"code":null}}\n',
    ],
    'C34': [
    ],
    'C35': [
    ],
    'C36': [
    ],
    'C37': [
        b'HTTP/1.1 200 OK\ncontent-type: application/json\n\n{"object":"list","data":[{"id":"gpt-5","object":"model","created":1754000000,"owned_by":"system"},{"id":"gpt-5-mini","object":"model","created":1754000001,"owned_by":"system"}]}\n',
    ],
    'C38': [
        b'event: response.created\ndata: {"type":"response.created","sequence_number":0,"response":{"id":"resp_fake38","object":"response","created_at":1761000000,"status":"in_progress","model":"gpt-5","output":[],"usage":null}}\n\nevent: response.output_item.added\ndata: {"type":"response.output_item.added","sequence_number":1,"output_index":0,"item":{"id":"msg_fake38","type":"message","status":"in_progress","role":"assistant","content":[]}}\n\nevent: response.content_part.added\ndata: {"type":"response.content_part.added","sequence_number":2,"item_id":"msg_fake38","output_index":0,"content_index":0,"part":{"type":"output_text","text":"","annotations":[]}}\n\nevent: response.output_text.delta\ndata: {"type":"response.output_text.delta","sequence_number":3,"item_id":"msg_fake38","output_index":0,"content_index":0,"delta":"Hello there!","logprobs":[]}\n\nevent: response.output_text.done\ndata: {"type":"response.output_text.done","sequence_number":4,"item_id":"msg_fake38","output_index":0,"content_index":0,"text":"Hello there!","logprobs":[]}\n\nevent: response.completed\ndata: {"type":"response.completed","sequence_number":5,"response":{"id":"resp_fake38","object":"response","created_at":1761000000,"status":"completed","model":"gpt-5","output":[{"id":"msg_fake38","type":"message","status":"completed","role":"assistant","content":[{"type":"output_text","text":"Hello there!","annotations":[]}]}],"usage":{"input_tokens":10,"input_tokens_details":{"cached_tokens":0},"output_tokens":4,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":14}}}\n\n',
    ],
    'C39': [
        b'HTTP/1.1 200 OK\ncontent-type: application/json; charset=UTF-8\n\n{\n  "candidates": [\n    {\n      "content": {\n        "parts": [\n          {"text": "Plan briefly.", "thought": true},\n          {"text": "Hello there!"}\n        ],\n        "role": "model"\n      },\n      "finishReason": "STOP",\n      "index": 0\n    }\n  ],\n  "usageMetadata": {\n    "promptTokenCount": 2100,\n    "candidatesTokenCount": 3,\n    "totalTokenCount": 2153,\n    "cachedContentTokenCount": 1800,\n    "thoughtsTokenCount": 50\n  },\n  "modelVersion": "gemini-2.5-flash",\n  "responseId": "fakeResp39"\n}\n',
    ],
    'C40': [
    ],
    'C41': [
        b'HTTP/1.1 200 OK\ncontent-type: application/json; charset=UTF-8\n\n{"candidates":[{"content":{"parts":[{"functionCall":{"name":"read_file","args":{"path":"src/app.py"}},"thoughtSignature":"RmFrZVNpZw=="}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":80,"candidatesTokenCount":12,"totalTokenCount":92},"modelVersion":"gemini-2.5-flash","responseId":"fakeResp41"}\n',
    ],
    'C42': [
        b'HTTP/1.1 429 Too Many Requests\ncontent-type: application/json; charset=UTF-8\n\n{\n  "error": {\n    "code": 429,\n    "message": "You exceeded your current quota (fake). Please retry in 17.2s.",\n    "status": "RESOURCE_EXHAUSTED",\n    "details": [\n      {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests", "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier", "quotaDimensions": {"location": "global", "model": "gemini-2.5-flash"}, "quotaValue": "10"}]},\n      {"@type": "type.googleapis.com/google.rpc.Help", "links": [{"description": "Learn more about Gemini API quotas", "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]},\n      {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "17s"}\n    ]\n  }\n}\n',
    ],
    'C43': [
    ],
    'C44': [
        b'HTTP/1.1 400 Bad Request\ncontent-type: application/json; charset=UTF-8\n\n{\n  "error": {\n    "code": 400,\n    "message": "The input token count (1200293) exceeds the maximum number of tokens allowed (1048576).",\n    "status": "INVALID_ARGUMENT"\n  }\n}\n',
    ],
    'C45': [
        b'HTTP/1.1 400 Bad Request\ncontent-type: application/json; charset=UTF-8\n\n{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com","metadata":{"service":"generativelanguage.googleapis.com"}}]}}\n',
    ],
    'C46': [
        b'HTTP/1.1 403 Forbidden\ncontent-type: application/json; charset=UTF-8\n\n{"error":{"code":403,"message":"Method doesn\'t allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.","status":"PERMISSION_DENIED"}}\n',
    ],
    'C47': [
        b'HTTP/1.1 503 Service Unavailable\ncontent-type: application/json; charset=UTF-8\n\n{"error":{"code":503,"message":"The model is overloaded. Please try again later.","status":"UNAVAILABLE"}}\n',
    ],
    'C48': [
        b'{"candidates":[{"content":{"parts":[{"text":"The answer is a very long"}],"role":"model"},"finishReason":"MAX_TOKENS","index":0}],"usageMetadata":{"promptTokenCount":10,"candidatesTokenCount":8,"totalTokenCount":18},"modelVersion":"gemini-2.5-flash","responseId":"fakeResp48"}',
        b'{"candidates":[{"content":{"role":"model"},"finishReason":"MAX_TOKENS","index":0}],"usageMetadata":{"promptTokenCount":10,"totalTokenCount":1034,"thoughtsTokenCount":1024},"modelVersion":"gemini-2.5-flash","responseId":"fakeResp48b"}',
    ],
    'C49': [
        b'{"promptFeedback":{"blockReason":"PROHIBITED_CONTENT"},"usageMetadata":{"promptTokenCount":12,"totalTokenCount":12},"modelVersion":"gemini-2.5-flash","responseId":"fakeResp49"}',
    ],
    'C50': [
        b'data: {"candidates": [{"content": {"parts": [{"text": "Hel"}],"role": "model"},"index": 0}],"modelVersion": "gemini-2.5-flash","responseId": "fakeResp50"}\r\n\r\ndata: {"error": {"code": 503, "message": "The model is overloaded. Please try again later.", "status": "UNAVAILABLE"}}\r\n\r\n',
    ],
    'C51': [
        b'{"models":[{"name":"models/gemini-2.5-flash","version":"001","displayName":"Gemini 2.5 Flash","inputTokenLimit":1048576,"outputTokenLimit":65536,"supportedGenerationMethods":["generateContent","countTokens"],"thinking":true}],"nextPageToken":"p2"}',
        b'{"models":[{"name":"models/text-embedding-004","version":"004","displayName":"Text Embedding 004","inputTokenLimit":2048,"outputTokenLimit":1,"supportedGenerationMethods":["embedContent"]}]}',
    ],
    'C52': [
    ],
    'C53': [
        b': OPENROUTER PROCESSING\n\ndata: {"id":"gen-fake53","provider":"OpenAI","model":"openai/gpt-5","object":"chat.completion.chunk","created":1761000000,"choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"},"finish_reason":null}]}\n\ndata: {"id":"gen-fake53","provider":"OpenAI","model":"openai/gpt-5","object":"chat.completion.chunk","created":1761000000,"error":{"code":"server_error","message":"Provider disconnected unexpectedly"},"choices":[{"index":0,"delta":{"content":""},"finish_reason":"error"}]}\n\ndata: [DONE]\n\n',
    ],
    'C54': [
        b'HTTP/1.1 402 Payment Required\ncontent-type: application/json\n\n{"error":{"code":402,"message":"This request requires more credits, or fewer max_tokens (fake)."}}\n',
    ],
    'C55': [
        b'HTTP/1.1 400 Bad Request\ncontent-type: application/json\n\n{"error":{"code":400,"message":"This endpoint\'s maximum context length is 32768 tokens. However, you requested about 42832 tokens (42832 of text input). Please reduce the length of either one, or use the \\"middle-out\\" transform to compress your prompt automatically."}}\n',
    ],
    'C56': [
        b'HTTP/1.1 400 Bad Request\ncontent-type: application/json\n\n{"error":{"code":400,"message":"Provider returned error","metadata":{"raw":"{\\"type\\":\\"error\\",\\"error\\":{\\"type\\":\\"invalid_request_error\\",\\"message\\":\\"prompt is too long: 210000 tokens > 200000 maximum\\"}}","provider_name":"Anthropic"}}}\n',
    ],
    'C57': [
    ],
    'C58': [
        b'HTTP/1.1 200 OK\ncontent-type: application/json; charset=utf-8\n\n{"model":"qwen3:8b","created_at":"2025-10-26T17:20:00.000000Z","message":{"role":"assistant","content":"","tool_calls":[{"id":"call_fake58","function":{"index":0,"name":"read_file","arguments":{"path":"src/app.py"}}}]},"done_reason":"stop","done":true,"total_duration":885095291,"load_duration":3753500,"prompt_eval_count":122,"prompt_eval_duration":328493000,"eval_count":33,"eval_duration":552222000}\n',
    ],
    'C59': [
        b'HTTP/1.1 404 Not Found\ncontent-type: application/json; charset=utf-8\n\n{"error":"model \\"llama9:70b\\" not found, try pulling it first"}\n',
    ],
    'C60': [
        b'{"model":"qwen3:8b","created_at":"2025-10-26T17:21:21.196249Z","message":{"role":"assistant","content":" Yes"},"done":false}\n{"error":"an error was encountered while running the model"}\n',
    ],
    'C61': [
    ],
    'C62': [
    ],
    'C63': [
        b'data: {"id":"chatcmpl-123","object":"chat.completion.chunk","created":1761000000,"model":"qwen3:8b","system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{"role":"assistant","content":"","reasoning":"Think"},"finish_reason":null}]}\n\ndata: {"id":"chatcmpl-123","object":"chat.completion.chunk","created":1761000000,"model":"qwen3:8b","system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":null}]}\n\ndata: {"id":"chatcmpl-123","object":"chat.completion.chunk","created":1761000000,"model":"qwen3:8b","system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":"stop"}]}\n\ndata: {"id":"chatcmpl-123","object":"chat.completion.chunk","created":1761000000,"model":"qwen3:8b","system_fingerprint":"fp_ollama","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}}\n\ndata: [DONE]\n\n',
    ],
    'C64': [
        b'HTTP/1.1 400 Bad Request\ncontent-type: application/json\n\n{"object":"error","message":"This model\'s maximum context length is 32768 tokens. However, you requested 41648 tokens (37552 in the messages, 4096 in the completion). Please reduce the length of the messages or completion.","type":"BadRequestError","param":null,"code":400}\n',
    ],
    'C65': [
        b'HTTP/1.1 500 Internal Server Error\ncontent-type: application/json; charset=utf-8\n\n{"error":{"code":500,"message":"the request exceeds the available context size. try increasing the context size or enable context shift","type":"exceed_context_size_error","n_prompt_tokens":1407,"n_ctx":256}}\n',
    ],
    'C66': [
        b': keep-alive\n\ndata: {"id":"fake66","object":"chat.completion.chunk","created":1761000000,"model":"deepseek-reasoner","choices":[{"index":0,"delta":{"role":"assistant","content":null,"reasoning_content":"Think"},"logprobs":null,"finish_reason":null}]}\n\n: keep-alive\n\ndata: {"id":"fake66","object":"chat.completion.chunk","created":1761000000,"model":"deepseek-reasoner","choices":[{"index":0,"delta":{"content":"Hi"},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":100,"completion_tokens":10,"total_tokens":110,"prompt_cache_hit_tokens":64,"prompt_cache_miss_tokens":36,"completion_tokens_details":{"reasoning_tokens":5}}}\n\ndata: [DONE]\n\n',
    ],
    'C67': [
        b'data: {"id":"chatcmpl-fake67","object":"chat.completion.chunk","created":1761000000,"model":"llama-3.3-70b-versatile","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"logprobs":null,"finish_reason":null}]}\n\ndata: {"id":"chatcmpl-fake67","object":"chat.completion.chunk","created":1761000000,"model":"llama-3.3-70b-versatile","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"x_groq":{"id":"req_fake67","usage":{"queue_time":0.01,"prompt_tokens":23,"prompt_time":0.006,"completion_tokens":1,"completion_time":0.002,"total_tokens":24,"total_time":0.008}}}\n\ndata: [DONE]\n\n',
        b'HTTP/1.1 413 Payload Too Large\ncontent-type: application/json\n\n{"error":{"message":"Request too large for model `llama-3.3-70b-versatile` in organization `org_fake` service tier `on_demand` on tokens per minute (TPM): Limit 6000, Requested 14368, please reduce your message size and try again.","type":"tokens","code":"rate_limit_exceeded"}}\n',
    ],
    'C68': [
        b'data: {"id":"chatcmpl-fake68","object":"chat.completion.chunk","created":1761000000,"model":"local-model","choices":[{"index":0,"delta":{"role":"assistant"},"finish_reason":null}]}\n\ndata: {"id":"chatcmpl-fake68","object":"chat.completion.chunk","created":1761000000,"model":"local-model","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":36000,"completion_tokens":0,"total_tokens":36000}}\n\ndata: [DONE]\n\n',
    ],
    'C69': [
    ],
    'C70': [
        b'data: {"id":"c70","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"a\xe2\x80\xa8b"},"finish_reason":null}]}\n\n',
    ],
    'C71': [
        b'data: {"id":"c71","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"Hel',
    ],
    'C72': [
    ],
    'C73': [
    ],
    'C74': [
        b'HTTP/1.1 400 Bad Request\ncontent-type: application/json\n\n{"type":"error","error":{"type":"invalid_request_error","message":"anthropic-version: header is required"}}\n',
    ],
}

NAMED: dict[str, bytes] = {
    'ANTHROPIC_BASIC_STREAM': b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_01FakeBasic","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":11,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1}}}\n\nevent: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\n\nevent: ping\ndata: {"type": "ping"}\n\nevent: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}\n\nevent: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" there!"}}\n\nevent: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\nevent: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":6}}\n\nevent: message_stop\ndata: {"type":"message_stop"}\n\n',
    'ANTHROPIC_THINKING_STREAM': b'event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}\n\nevent: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Let me look at"}}\n\nevent: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQBCkYIBxgCKkBfake=="}}\n\nevent: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n',
    'ANTHROPIC_TOOL_STREAM': b'event: content_block_start\ndata: {"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_01FakeTool","name":"read_file","input":{}}}\n\nevent: content_block_delta\ndata: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}}\n\nevent: content_block_delta\ndata: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\\"pa"}}\n\nevent: content_block_delta\ndata: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"th\\": \\"src/app.py\\"}"}}\n\nevent: content_block_stop\ndata: {"type":"content_block_stop","index":1}\n\nevent: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":65}}\n\n',
    'ANTHROPIC_ERROR_EVENT': b'event: error\ndata: {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}\n\n',
    'OPENAI_BASIC_STREAM': b'data: {"id":"chatcmpl-FakeS1","object":"chat.completion.chunk","created":1761000000,"model":"gpt-5-2025-08-07","service_tier":"default","system_fingerprint":null,"choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}\n\ndata: {"id":"chatcmpl-FakeS1","object":"chat.completion.chunk","created":1761000000,"model":"gpt-5-2025-08-07","service_tier":"default","system_fingerprint":null,"choices":[{"index":0,"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}],"usage":null}\n\ndata: {"id":"chatcmpl-FakeS1","object":"chat.completion.chunk","created":1761000000,"model":"gpt-5-2025-08-07","service_tier":"default","system_fingerprint":null,"choices":[{"index":0,"delta":{"content":" there!"},"logprobs":null,"finish_reason":null}],"usage":null}\n\ndata: {"id":"chatcmpl-FakeS1","object":"chat.completion.chunk","created":1761000000,"model":"gpt-5-2025-08-07","service_tier":"default","system_fingerprint":null,"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}\n\ndata: {"id":"chatcmpl-FakeS1","object":"chat.completion.chunk","created":1761000000,"model":"gpt-5-2025-08-07","service_tier":"default","system_fingerprint":null,"choices":[],"usage":{"prompt_tokens":19,"completion_tokens":4,"total_tokens":23,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}\n\ndata: [DONE]\n\n',
    'OPENAI_TOOL_STREAM': b'data: {"id":"chatcmpl-FakeT1","object":"chat.completion.chunk","created":1761000000,"model":"gpt-5","choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_Fake1","type":"function","function":{"name":"read_file","arguments":""}}]},"logprobs":null,"finish_reason":null}],"usage":null}\n\ndata: {"id":"chatcmpl-FakeT1","object":"chat.completion.chunk","created":1761000000,"model":"gpt-5","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\\"pa"}}]},"logprobs":null,"finish_reason":null}],"usage":null}\n\ndata: {"id":"chatcmpl-FakeT1","object":"chat.completion.chunk","created":1761000000,"model":"gpt-5","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"th\\":\\"src/app.py\\"}"}}]},"logprobs":null,"finish_reason":null}],"usage":null}\n\ndata: {"id":"chatcmpl-FakeT1","object":"chat.completion.chunk","created":1761000000,"model":"gpt-5","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"tool_calls"}],"usage":null}\n\n',
    'OPENROUTER_STREAM': b': OPENROUTER PROCESSING\n\n: OPENROUTER PROCESSING\n\ndata: {"id":"gen-1761000000-FakeS","provider":"Anthropic","model":"anthropic/claude-sonnet-4.5","object":"chat.completion.chunk","created":1761000000,"choices":[{"index":0,"delta":{"role":"assistant","content":"Hello"},"finish_reason":null,"native_finish_reason":null,"logprobs":null}]}\n\ndata: {"id":"gen-1761000000-FakeS","provider":"Anthropic","model":"anthropic/claude-sonnet-4.5","object":"chat.completion.chunk","created":1761000000,"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":"stop","native_finish_reason":"end_turn","logprobs":null}]}\n\ndata: {"id":"gen-1761000000-FakeS","provider":"Anthropic","model":"anthropic/claude-sonnet-4.5","object":"chat.completion.chunk","created":1761000000,"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17,"cost":0.000111,"is_byok":false,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}\n\ndata: [DONE]\n\n',
    'GEMINI_SSE_STREAM': b'data: {"candidates": [{"content": {"parts": [{"text": "Hello"}],"role": "model"},"index": 0}],"usageMetadata": {"promptTokenCount": 9,"totalTokenCount": 9,"promptTokensDetails": [{"modality": "TEXT","tokenCount": 9}]},"modelVersion": "gemini-2.5-flash","responseId": "FakeResp1"}\r\n\r\ndata: {"candidates": [{"content": {"parts": [{"text": " there!"}],"role": "model"},"finishReason": "STOP","index": 0}],"usageMetadata": {"promptTokenCount": 9,"candidatesTokenCount": 3,"totalTokenCount": 40,"promptTokensDetails": [{"modality": "TEXT","tokenCount": 9}],"thoughtsTokenCount": 28},"modelVersion": "gemini-2.5-flash","responseId": "FakeResp1"}\r\n\r\n',
    'OLLAMA_CHAT_STREAM': b'{"model":"qwen3:8b","created_at":"2025-10-26T17:15:24.097767Z","message":{"role":"assistant","content":"","thinking":"User asks"},"done":false}\n{"model":"qwen3:8b","created_at":"2025-10-26T17:15:24.109172Z","message":{"role":"assistant","content":"Hello"},"done":false}\n{"model":"qwen3:8b","created_at":"2025-10-26T17:15:24.121485Z","message":{"role":"assistant","content":" there!"},"done":false}\n{"model":"qwen3:8b","created_at":"2025-10-26T17:15:24.166576Z","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","total_duration":174560334,"load_duration":101397084,"prompt_eval_count":11,"prompt_eval_duration":13074791,"eval_count":18,"eval_duration":52479709}\n',
    'OLLAMA_TAGS': b'{"models":[{"name":"qwen3:8b","model":"qwen3:8b","modified_at":"2025-05-10T08:06:48.639712648-07:00","size":5225376047,\n            "digest":"500a1f067a9fFAKE","details":{"parent_model":"","format":"gguf","family":"qwen3","families":["qwen3"],\n            "parameter_size":"8.2B","quantization_level":"Q4_K_M"}}]}\n',
}
