"""2Captcha's classic API (in.php / res.php), as 2captcha-python and most crawlers speak it."""
