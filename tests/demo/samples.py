"""Values the demo platform's in-process tests share."""

TOOL = "http://tool.test:8000"
NOW = 1_795_346_097  # a fixed "now" for the tokens the tests sign (Unix time)
