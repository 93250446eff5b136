"""The browser back office for case work: thin views over the services, selectors and templates in
``templates/debt_collections/``. Every view checks the user's rights on the server
(``debt_collections.visibility``)."""
