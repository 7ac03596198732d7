"""A minimal Django project: settings, urls and views in code, no database, no templates."""
