"""Showing results: CostReport -> pandas DataFrame -> text, markdown, CSV or JSON (and later figures)."""
