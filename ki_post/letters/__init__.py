"""Letter templates, the DOCX engine, print merge and PDF."""
