"""Formatting of results for people: terminal tables now, Markdown and HTML reports later."""
