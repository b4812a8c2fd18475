"""The live preview: the server (the only user of livereload), file watching, the reload client."""
