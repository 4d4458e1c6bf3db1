"""CapSolver's task API (the capsolver client): Anti-Captcha's, answering image tasks at once."""
