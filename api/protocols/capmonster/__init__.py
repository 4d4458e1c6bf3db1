"""CapMonster Cloud's task API (capmonstercloudclient): Anti-Captcha's, with a confidence threshold."""
