"""Forenscope as an OpenAI-compatible vision model: `forenscope serve-openai`.

`server` (the FastAPI app, `create_openai_app(OpenAISettings(...))`), `wire` (reading requests,
writing completions), `stream` (SSE chunks), `tokens` (usage counting), `followup` (answers to
later turns from the report), `cli` (the `serve-openai` command). It shares the service's
security, admission and launcher code; the LLM client engine stays in `forenscope.mllm`.
"""
