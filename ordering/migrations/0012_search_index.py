"""Full-text indexes for the restaurant list's search (ordering.search): restaurants by name,
cuisine and description, dishes by name and description.

Built with InnoDB's stopword list off, so that a dish called "The Works" or a word like "about"
is found: the setting is read when an index is created.
"""

from django.db import migrations

RESTAURANT = "ordering_restaurant_search"
DISH = "ordering_menuitem_search"


class Migration(migrations.Migration):
    dependencies = [
        ("ordering", "0010_dish_options"),
    ]

    operations = [
        migrations.RunSQL(
            [
                "SET SESSION innodb_ft_enable_stopword = OFF",
                f"CREATE FULLTEXT INDEX {RESTAURANT} ON ordering_restaurant (name, cuisine, description)",
                f"CREATE FULLTEXT INDEX {DISH} ON ordering_menuitem (name, description)",
                "SET SESSION innodb_ft_enable_stopword = ON",
            ],
            reverse_sql=[
                f"DROP INDEX {RESTAURANT} ON ordering_restaurant",
                f"DROP INDEX {DISH} ON ordering_menuitem",
            ],
        ),
    ]
