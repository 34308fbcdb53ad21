"""No personal identifiers or signing tokens reach the access logs."""
from __future__ import annotations

import logging

from returnprog.web.redaction import TokenRedactingFilter, redact_tokens


def test_search_terms_in_query_strings_are_redacted():
    line = 'GET /cases?state=intake&q=1234567890&page=2 HTTP/1.1'
    assert redact_tokens(line) == 'GET /cases?state=intake&q=[redacted]&page=2 HTTP/1.1'
    assert "Kovalenko" not in redact_tokens("/api/v1/cases?q=Kovalenko")
    # Other parameters and paths are left as they are.
    assert redact_tokens("GET /cases?state=intake HTTP/1.1") == "GET /cases?state=intake HTTP/1.1"


def test_the_filter_redacts_werkzeug_style_request_lines():
    record = logging.LogRecord("werkzeug", logging.INFO, __file__, 1, '%s - - "%s" %s',
                               ("127.0.0.1", "GET /cases?q=3000000000 HTTP/1.1", "200"), None)
    TokenRedactingFilter().filter(record)
    assert "3000000000" not in record.getMessage()
    assert "q=[redacted]" in record.getMessage()
