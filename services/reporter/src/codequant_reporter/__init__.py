"""codequant reporter service."""

#: The files a report can be written as.
FORMATS = ("md", "html", "csv", "tex", "json")
