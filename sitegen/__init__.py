"""sitegen: a Flask site built from YAML content, previewed live and frozen to static files.

Kept empty of imports so that commands which need no Flask start fast.
"""
