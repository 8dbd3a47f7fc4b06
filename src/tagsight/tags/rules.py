"""Default rules for turning hashtags into visual labels: lexname policy, stop list, fillers, overrides.

These constants are the defaults of ``VocabConfig``; ``configs/vocab_default.yaml`` holds the same
values (a test keeps them equal) and docs/vocabulary.md explains each choice. They were checked
against the 997 real hashtags of HARRISON: review the report's drop and merge tables when you
build a vocabulary from another corpus, and extend the stop list and overrides in your YAML.
"""

from __future__ import annotations

from tagsight.tags.wordnet import LEXNAMES

NOUN_LEXNAMES: tuple[str, ...] = tuple(name for name in LEXNAMES if name.startswith("noun."))

# Lexicographer files whose synsets are things a photo can show. noun.person is visual but
# identity-sensitive: named people are dropped (person_name) and so are the categories of
# DEFAULT_SENSITIVE_SYNSETS (sensitive_category). noun.location is kept for common nouns (city,
# park, harbor); named places are dropped (place_name). noun.Tops is judged per synset: the
# physical unique beginners (person, animal, plant, food, artifact) are visual, the abstract ones not.
# Not visual: noun.act, noun.attribute, noun.cognition, noun.communication, noun.event,
# noun.feeling, noun.group, noun.motive, noun.possession, noun.process, noun.quantity,
# noun.relation, noun.state, noun.time.
DEFAULT_VISUAL_LEXNAMES: tuple[str, ...] = (
    "noun.animal", "noun.artifact", "noun.body", "noun.food", "noun.location", "noun.object",
    "noun.person", "noun.phenomenon", "noun.plant", "noun.shape", "noun.substance",
)

# Synsets that are visual although their lexicographer file is not (a smile is filed under
# communication, a wave under event, a shadow under state).
DEFAULT_VISUAL_SYNSETS: tuple[str, ...] = (
    "smile.n.01", "people.n.01", "crowd.n.01", "wave.n.01", "surf.n.01", "shadow.n.01",
)

# Person categories that must never become labels a model predicts from a photo: nationality
# and residence, skin colour, religion, sexual orientation. A synset that is one of these or
# descends from one is dropped with reason ``sensitive_category``.
DEFAULT_SENSITIVE_SYNSETS: tuple[str, ...] = (
    "inhabitant.n.01", "person_of_color.n.01", "white.n.01", "black.n.05", "religious_person.n.01",
    "jew.n.01", "homosexual.n.01", "heterosexual.n.01", "bisexual.n.01",
)

# Tags that say nothing about what the picture shows, although WordNet, or a word inside them,
# has a visual noun sense. Matched on the normalised tag.
DEFAULT_STOP_LIST: tuple[str, ...] = (
    # engagement, platforms and apps
    "instagood", "instagram", "instadaily", "instalike", "instalikes", "instamood", "instacool",
    "instapic", "instaphoto", "instasize", "instamoment", "instagramers", "igers", "igdaily",
    "follow", "followme", "follower", "followforfollow", "follow4follow", "f4f", "followback",
    "followtrain", "like", "likes", "like4like", "likeforlike", "l4l", "likeback", "likeforfollow",
    "tagsforlikes", "tagforlikes", "gainpost", "gaintrick", "instagramhub", "instahub", "toptags",
    "repost", "latergram", "latepost", "photooftheday", "picoftheday", "bestoftheday", "instalove",
    "tbt", "throwback", "nofilter", "nocrop", "picstitch", "photogrid", "vsco", "vscocam",
    "snapchat", "tumblr", "youtube", "kik", "webstagram", "statigram", "tweegram", "hashtag",
    "hashtags", "shoutout", "doubletap", "spamforspam", "sfs", "fff", "lfl", "potd", "tflers",
    # moods, judgements, greetings, slang
    "love", "loveyou", "loveit", "iloveyou", "inlove", "happy", "happiness", "fun", "funny",
    "cute", "cool", "beautiful", "beauty", "amazing", "awesome", "nice", "good", "best", "perfect",
    "pretty", "lovely", "sweet", "bored", "tired", "truth", "lol", "lmao", "omg", "wtf", "yolo",
    "swag", "swagger", "dope", "goodtimes", "goodvibes", "blessed", "mood", "vibe", "vibes",
    "feeling", "new", "old", "goodmorning", "goodnight", "hello", "thankyou", "sorry", "miss",
    "missyou", "soul", "wake", "wakeup", "wakingup", "lover", "truelove", "musthave", "trend",
    "energy", "place",
    # pronouns and function words that WordNet reads as nouns (mine = a pit)
    "mine", "me", "myself", "you", "and", "the", "with", "for",
    # "a photo": every post is one; the poster, not the subject
    "photo", "photos", "pic", "pics", "picture", "photography", "photograph", "photographer",
    "photoshoot", "shoot", "foto", "snapshot", "shot", "capture", "filter", "blogger", "lookbook",
    # styles and scenes of fandom rather than things
    "vintage", "retro", "anime", "manga", "goth", "kpop", "pop", "onedirection", "modeling",
    "sneakerhead", "mambaday", "sol",
    # brands and products: WordNet knows the word in another sense (puma the cat, mac the
    # raincoat, jordan the country); the visual noun (#sneaker, #phone) is the label to learn
    "nike", "adidas", "puma", "converse", "newbalance", "jordan", "airmax", "nikeairmax", "vans",
    "yeezy", "zara", "chanel", "mac", "maccosmetics", "canon", "nikon", "gopro", "iphone",
    "iphoneonly", "iphonesia", "disney", "anastasiabeverlyhills", "hudabeauty",
    # identities rather than things in the picture
    "vegan", "vegetarian", "gay", "gayboy", "instagay", "lgbt",
)

# Words that decorate a hashtag without changing its subject: removed as whole segments
# (dogs of insta gram -> dogs) and, when 3 or more characters long, stripped as a prefix or
# suffix of the unsegmented tag (beachlife -> beach, sunsetlover -> sunset, instafood -> food).
DEFAULT_FILLER_WORDS: tuple[str, ...] = (
    "instagram", "insta", "stagram", "gram", "ig", "igers", "oftheday", "of", "the", "my", "i", "ilove",
    "daily", "life", "lover", "lovers", "love", "photography", "photo", "photos", "pic", "pics",
    "porn", "gasm", "addict", "junkie", "time", "day",
)

# Tag or lemma (normalised form) -> WordNet noun synset, used instead of the first noun sense
# when that is not what people mean in a photo hashtag, or when WordNet lacks the word.
DEFAULT_OVERRIDES: dict[str, str] = {
    "sunset": "sunset.n.02",          # first sense: the time of day (noun.time)
    "sunrise": "sunrise.n.02",        # idem
    "church": "church.n.02",          # first sense: the Christian community (noun.group)
    "nature": "nature.n.03",          # first sense: essential qualities (noun.attribute)
    "forest": "forest.n.02",          # first sense is filed under noun.group
    "outfit": "outfit.n.02",          # first sense: a military unit
    "ootd": "outfit.n.02",            # "outfit of the day"; not in WordNet
    "model": "model.n.03",            # first sense: a hypothetical description
    "kitty": "kitty.n.04",            # first sense: the stakes of a bet
    "book": "book.n.02",              # first sense: the written work (noun.communication)
    "magazine": "magazine.n.02",      # idem
    "portrait": "portrait.n.02",      # first sense: a word picture
    "drawing": "drawing.n.02",        # first sense: a published illustration (noun.communication)
    "draw": "drawing.n.02",           # first sense: a gully
    "tattoo": "tattoo.n.02",          # first sense: a drumbeat
    "bikini": "bikini.n.02",          # first sense: the atoll
    "reflection": "reflection.n.05",  # first sense: contemplation
    "eyes": "eye.n.01",               # "eyes" is also a lemma of its own (opinion)
    "men": "man.n.01",                # "men" is also a lemma of its own (work force)
    "cake": "cake.n.03",              # first sense: a block of solid substance (soap, wax)
    "chocolate": "chocolate.n.02",    # first sense: the hot drink
    "plant": "plant.n.02",            # first sense: an industrial plant
    "sunglass": "sunglasses.n.01",    # HARRISON lemmatises sunglasses; sunglass.n.01 is a burning lens
    "queen": "queen.n.02",            # first sense: the queen insect
    "scenery": "scenery.n.02",        # first sense: a stage set
    "turkey": "turkey.n.02",          # the country far more often than the bird on photo posts
    "top": "top.n.10",                # first sense: the upper part of anything; a top is a garment
    "greeneye": "eye.n.01",           # whole-word lemma: a fish
    "foodie": "food.n.01",            # an epicure; the photos show the food
    "miami": "miami.n.02",            # first sense: an Algonquian people; the city is a place name
    "selfie": "self-portrait.n.01",   # not in WordNet 3.0 (2006)
    "selfies": "self-portrait.n.01",
    "selca": "self-portrait.n.01",    # Korean-English for selfie
}
