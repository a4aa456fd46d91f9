"""Reliability and security tests: bad inputs, faults and untrusted code (issue 7)."""
