"""The site's content: YAML files read safely (yaml_source), the record classes a site declares
(model), Markdown fields (markdown), and loading a whole content/ folder (loader).

Kept free of imports: declaring a site needs only the model, not the YAML parser.
"""
