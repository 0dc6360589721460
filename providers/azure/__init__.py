"""Azure provider (Virtual Machines): for now the live price refresh from the Azure Retail Prices API.

``retail_prices.py`` talks to the public, unauthenticated Retail Prices API over ``requests``;
``pricing.py`` turns its items into quotes and commitment rates checked against the shipped
catalog. The provider class itself arrives with the Azure inventory work.
"""
