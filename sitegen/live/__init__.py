"""The preview's live pages (sign-in, uploads, the API, the cookie page) and their accounts.

Registered only in the preview's app: the app that freezes never imports this package.
"""
