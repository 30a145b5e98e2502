"""Demo restaurants, menus and logins of docs/contract.md, for demonstration and tests only."""

from __future__ import annotations

from decimal import Decimal

DEMO_PASSWORD = "passline-demo"

# (dish, description, price, daily stock or None for no limit)
Dish = tuple[str, str, str, int | None]
# (name, slug, cuisine, description, prep minutes, {category: [dish]})
RESTAURANTS: list[tuple[str, str, str, str, int, dict[str, list[Dish]]]] = [
    (
        "Trattoria Nonna Lucia",
        "trattoria-nonna-lucia",
        "Italian",
        "Wood-fired pizza and fresh pasta rolled every morning.",
        18,
        {
            "Antipasti": [
                ("Bruschetta al pomodoro", "Grilled sourdough, vine tomatoes, basil, garlic.", "6.50", None),
                ("Burrata pugliese", "Creamy burrata, roasted cherry tomatoes, rocket.", "9.80", 20),
            ],
            "Pizza": [
                ("Margherita", "San Marzano tomato, fior di latte, basil.", "10.50", None),
                ("Diavola", "Spicy salami, tomato, mozzarella, chilli oil.", "12.90", None),
                ("Quattro formaggi", "Mozzarella, gorgonzola, fontina, parmigiano.", "13.40", None),
            ],
            "Pasta": [
                ("Tagliatelle al ragù", "Slow-cooked beef and pork ragù, six hours.", "14.20", 30),
                ("Cacio e pepe", "Tonnarelli, pecorino romano, black pepper.", "12.60", None),
            ],
            "Dolci": [
                ("Tiramisù della casa", "Mascarpone, espresso, savoiardi.", "6.90", 25),
            ],
        },
    ),
    (
        "Sakura Ramen Bar",
        "sakura-ramen-bar",
        "Japanese",
        "Rich broths simmered for eighteen hours, hand-pulled noodles.",
        15,
        {
            "Small plates": [
                ("Pork gyoza (6)", "Pan-fried dumplings, ponzu dip.", "7.20", None),
                ("Edamame", "Steamed soy beans, sea salt.", "4.50", None),
                ("Karaage", "Japanese fried chicken, yuzu mayo.", "8.40", None),
            ],
            "Ramen": [
                ("Tonkotsu ramen", "Pork bone broth, chashu, ajitama egg, nori.", "15.50", 40),
                ("Shoyu ramen", "Soy chicken broth, bamboo shoots, spring onion.", "14.00", None),
                ("Miso vegan ramen", "White miso, roasted corn, tofu, sesame.", "13.80", None),
            ],
            "Drinks": [
                ("Matcha iced tea", "Lightly sweetened.", "3.90", None),
            ],
        },
    ),
    (
        "Green Bowl Kitchen",
        "green-bowl-kitchen",
        "Healthy",
        "Seasonal bowls, salads and juices, nothing fried.",
        10,
        {
            "Bowls": [
                ("Falafel power bowl", "Quinoa, falafel, hummus, pickled cabbage, tahini.", "11.90", None),
                ("Teriyaki salmon bowl", "Brown rice, salmon, avocado, edamame, sesame.", "14.50", 15),
                ("Chicken shawarma bowl", "Spiced chicken, bulgur, cucumber, garlic yoghurt.", "12.80", None),
            ],
            "Salads": [
                ("Greek salad", "Feta, olives, tomato, cucumber, red onion, oregano.", "9.40", None),
                ("Caesar salad", "Romaine, parmesan, croutons, anchovy dressing.", "10.20", None),
            ],
            "Juices": [
                ("Green detox", "Apple, celery, spinach, ginger, lime.", "5.60", None),
                ("Sunrise", "Orange, carrot, turmeric.", "5.20", None),
            ],
        },
    ),
    (
        "Harbour Fish & Chips",
        "harbour-fish-and-chips",
        "British",
        "Beer-battered cod and hand-cut chips, wrapped to take away from the harbour hatch.",
        12,
        {
            "Fish": [
                ("Cod and chips", "Beer-battered cod, hand-cut chips, tartare sauce.", "12.50", None),
                ("Scampi and chips", "Whitby scampi, chips, lemon.", "13.20", None),
            ],
            "Sides": [
                ("Mushy peas", "Marrowfat peas, mint.", "2.80", None),
                ("Curry sauce", "The chippy classic.", "2.20", None),
            ],
        },
    ),
    (
        "Le Petit Bistro",
        "le-petit-bistro",
        "French",
        "Bistro classics delivered in the evening, from a kitchen with no counter.",
        25,
        {
            "Plats": [
                ("Boeuf bourguignon", "Beef braised in red wine, mash.", "18.90", 20),
                ("Coq au vin", "Chicken, bacon, mushrooms, red wine.", "17.50", None),
                ("Ratatouille", "Provençal vegetables, herbs, crusty bread.", "13.40", None),
            ],
            "Desserts": [
                ("Crème brûlée", "Vanilla custard, burnt sugar.", "6.80", None),
            ],
        },
    ),
]

# How each demo restaurant hands its orders over: (delivers, pick-up, delivery fee, minimum order).
# The first three deliver for free with no minimum and offer pick-up too, so that a client that
# knows nothing of fulfilment (total = the dishes) orders from them as before.
FULFILMENT: dict[str, tuple[bool, bool, str, str]] = {
    "harbour-fish-and-chips": (False, True, "0.00", "0.00"),
    "le-petit-bistro": (True, False, "3.50", "20.00"),
}
BOTH_FREE = (True, True, "0.00", "0.00")


# Which kitchen station makes each demo category (a kitchen screen can show only some).
STATIONS = {
    "Antipasti": "cold",
    "Pizza": "oven",
    "Pasta": "stove",
    "Dolci": "cold",
    "Small plates": "fryer",
    "Ramen": "stove",
    "Drinks": "bar",
    "Bowls": "hot",
    "Salads": "cold",
    "Juices": "bar",
    "Fish": "fryer",
    "Sides": "fryer",
    "Plats": "stove",
    "Desserts": "cold",
}


# VAT rates of the demo menus, in percent: drinks are taxed at another rate than food (as for
# deliveries in Germany), so a receipt shows two rates. Categories not named here: food.
FOOD_VAT_RATE = "7.00"
VAT_RATES = {"Drinks": "19.00", "Juices": "19.00"}

# Opening hours of every demo restaurant (``Restaurant.opening_hours``): around the clock, every
# day, so the demo logins can order at any time; the staff pages change them.
DEMO_HOURS = {str(day): [["00:00", "00:00"]] for day in range(7)}


def money(value: str) -> Decimal:
    return Decimal(value)


# Allergens and dietary tags of the demo dishes (codes of ``ordering.options``): (allergens, dietary).
TAGS: dict[str, tuple[list[str], list[str]]] = {
    "Bruschetta al pomodoro": (["gluten"], ["vegetarian", "vegan", "dairy_free"]),
    "Burrata pugliese": (["milk"], ["vegetarian", "gluten_free"]),
    "Margherita": (["gluten", "milk"], ["vegetarian"]),
    "Diavola": (["gluten", "milk"], ["spicy"]),
    "Quattro formaggi": (["gluten", "milk"], ["vegetarian"]),
    "Tagliatelle al ragù": (["gluten", "eggs", "celery"], []),
    "Cacio e pepe": (["gluten", "milk"], ["vegetarian"]),
    "Tiramisù della casa": (["gluten", "eggs", "milk"], ["vegetarian"]),
    "Pork gyoza (6)": (["gluten", "soy", "sesame"], ["dairy_free"]),
    "Edamame": (["soy"], ["vegetarian", "vegan", "gluten_free", "dairy_free"]),
    "Karaage": (["gluten", "eggs", "soy"], []),
    "Tonkotsu ramen": (["gluten", "eggs", "soy", "sesame"], []),
    "Shoyu ramen": (["gluten", "eggs", "soy"], []),
    "Miso vegan ramen": (["gluten", "soy", "sesame"], ["vegetarian", "vegan", "dairy_free"]),
    "Matcha iced tea": ([], ["vegetarian", "vegan", "gluten_free"]),
    "Falafel power bowl": (["sesame"], ["vegetarian", "vegan", "dairy_free"]),
    "Teriyaki salmon bowl": (["fish", "soy", "sesame"], ["dairy_free"]),
    "Chicken shawarma bowl": (["gluten", "milk"], ["spicy"]),
    "Greek salad": (["milk"], ["vegetarian", "gluten_free"]),
    "Caesar salad": (["gluten", "eggs", "fish", "milk"], []),
    "Green detox": (["celery"], ["vegetarian", "vegan", "gluten_free", "dairy_free"]),
    "Sunrise": ([], ["vegetarian", "vegan", "gluten_free", "dairy_free"]),
    "Cod and chips": (["fish", "gluten"], ["dairy_free"]),
    "Scampi and chips": (["crustaceans", "gluten"], ["dairy_free"]),
    "Mushy peas": ([], ["vegetarian", "vegan", "gluten_free", "dairy_free"]),
    "Curry sauce": (["celery", "mustard"], ["vegetarian", "vegan", "spicy"]),
    "Boeuf bourguignon": (["celery", "sulphites"], ["gluten_free"]),
    "Coq au vin": (["sulphites"], ["gluten_free", "dairy_free"]),
    "Ratatouille": (["gluten"], ["vegetarian", "vegan", "dairy_free"]),
    "Crème brûlée": (["eggs", "milk"], ["vegetarian", "gluten_free"]),
}

# Option groups of some demo dishes: (group, min choices, max choices, [(option, price delta)]).
# Margherita keeps only optional extras, so a client that knows nothing of options still orders it.
OptionGroupSeed = tuple[str, int, int, list[tuple[str, str]]]
PIZZA_EXTRAS: OptionGroupSeed = ("Extras", 0, 3, [("Extra mozzarella", "1.00"), ("Bacon", "1.50"), ("Rocket", "0.80")])
OPTIONS: dict[str, list[OptionGroupSeed]] = {
    "Margherita": [PIZZA_EXTRAS],
    "Diavola": [("Size", 1, 1, [("Small", "-2.00"), ("Regular", "0.00"), ("Large", "3.00")]), PIZZA_EXTRAS],
    "Tonkotsu ramen": [
        ("Size", 1, 1, [("Regular", "0.00"), ("Large", "2.50")]),
        ("Toppings", 0, 3, [("Extra egg", "1.20"), ("Extra chashu", "2.50"), ("Sweet corn", "0.60")]),
    ],
    "Falafel power bowl": [("Add", 0, 2, [("Avocado", "1.80"), ("Feta", "1.20")])],
    "Green detox": [("Size", 1, 1, [("330 ml", "0.00"), ("500 ml", "1.40")])],
}
