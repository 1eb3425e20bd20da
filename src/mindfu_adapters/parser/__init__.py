"""DocumentParser adapters (PDF, DOCX, text and code) and the dispatcher that picks one by content."""
