"""Local models: the embedded llama.cpp server, Ollama discovery (DESIGN.md 11)."""
