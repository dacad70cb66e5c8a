#!/usr/bin/env python3
"""Build the bookbridge demo data set from goodbooks-10k (CC BY-SA 4.0).

Reads the goodbooks-10k CSVs (books, tags, book_tags, ratings, to_read,
book_coverage) and writes one gzip-compressed JSON-Lines file per entity, in the
camelCase GraphQL ingestion input shapes, plus manifest.json, ATTRIBUTION.md and
a copy of LICENSE.

Real data: books (titles, authors, years, ratings), tags -> topics, book_tags ->
topic/book weights, ratings/to_read rows -> engagement events.
Synthetic: publishers, the curated subject/grade/category map, descriptions,
all timestamps, and study sets.

The output is byte-for-byte deterministic: fixed seeds, sorted records,
compact JSON, gzip with mtime=0 and no file name in the header.

Usage: .venv/bin/python scripts/build_demo_data.py \
           --source ../shared/data/goodbooks --out app/demo/data
Stdlib only.
"""

import argparse
import collections
import csv
import datetime as dt
import gzip
import hashlib
import json
import random
import re
import shutil
from pathlib import Path

# --------------------------------------------------------------- curated maps
# Tables are ";"-separated text; an indented line continues the last cell of the row above.
PUBLISHERS_TABLE = """
Harbor Lane Press; Bluebell & Finch; Northgate Books; Copperleaf Publishing
Quill & Compass; Silver Birch House; Lantern Street Press; Meridian Hall
Old Mill Editions; Foxglove Books; Tidewater Press; Granite Peak Publishing
Starling House; Ironwood Books; Juniper Row; Saltmarsh Editions
Red Kite Press; Wildflower & Stone; Beacon Hill Books; Cedar Hollow Press
Paper Lantern House; Kestrel Publishing; Amberfield Books; Moonrise Editions
Riverbend Press; Blackthorn & Co.; Orchard Gate Books; Westwind Publishing
Larkspur Press; Hearthstone House; Thistledown Books; Seaglass Editions
Windmill Hill Press; Brightwater Books; Oakenshaw & Vale; Marigold Press
Driftwood House; Highland Quarto; Evergreen Page; Sparrowhawk Books
"""
SUBJECTS_TABLE = """
fiction; Fiction
nonfiction; Nonfiction
science; Science
history; History
poetry; Poetry
drama; Drama
comics; Comics & Graphic Novels
philosophy-religion; Philosophy & Religion
society; Society & Politics
arts; Arts & Culture
"""
# grade id; name; tag alternatives (the first matching grade wins)
GRADES_TABLE = """
middle-grade; Middle grade; middle-grades?|middle-school|tween
young-adult; Young adult; ya|young-?adults?|youngadult|teens?|youth
children; Children; children|childrens|children-s|kids|kid|juvenile|picture-books?|chapter-books
    |elementary
adult; Adult; adult|new-adult
"""
# Curated, ordered map from goodbooks tags to subject and category (a subject -> category ->
# subcategory tree). A rule matches when one of its regex alternatives is a whole hyphen-separated
# run of the tag ("ya-fantasy" matches "fantasy"); the first matching row wins. Rows without a
# category map a tag to the subject only.
# subject; category id; category name; parent category; tag alternatives
TAXONOMY_TABLE = r"""
fiction; paranormal-romance; Paranormal Romance; romance; paranormal-romance|pnr
fiction; historical-romance; Historical Romance; romance; historical-romance|romance-historical
    |regency
fiction; contemporary-romance; Contemporary Romance; romance; contemporary-romance
    |romance-contemporary|romantic-comedy
fiction; romantic-suspense; Romantic Suspense; romance; romantic-suspense|romance-suspense
    |suspense-romance
fiction; erotica; Erotica; romance; erotica|erotic
fiction; romance; Romance; ; romance|romantic|love|love-stor(y|ies)|love-triangles?
fiction; urban-fantasy; Urban Fantasy; fantasy; urban-fantasy
fiction; epic-fantasy; Epic & High Fantasy; fantasy; high-fantasy|epic-fantasy|fantasy-epic|epic
fiction; fairy-tales; Fairy Tales & Retellings; fantasy; fairy-?tales?|retellings?|folklore
fiction; mythology; Mythology; fantasy; myths?|mythology|gods
fiction; paranormal; Paranormal; fantasy; paranormal|supernatural|vampires?|vamps|werewolves
    |shifters|angels|demons|witches|ghosts?|fae|faeries|fairies
fiction; magical-realism; Magical Realism; literary-fiction; magic(al)?-realism|surreal\w*
fiction; fantasy; Fantasy; ; fantasy|magic|wizards|dragons
fiction; dystopian; Dystopian; science-fiction; dystop\w*|distop\w*|utopia
fiction; post-apocalyptic; Post-apocalyptic; science-fiction; post-apocalyp\w*|apocalyp\w*
fiction; time-travel; Time Travel; science-fiction; time-travel
fiction; steampunk; Steampunk; science-fiction; steampunk
fiction; science-fiction; Science Fiction; ; sci-?fi|science-?fiction|sciencefiction|sf|sff|sf-f
    |aliens|space|speculative-fiction|futuristic|future|cyberpunk
history; ; ; ; historical-non-?fiction|non-?fiction-history|history-non-?fiction
history; holocaust; Holocaust; world-war-ii; holocaust
history; world-war-ii; World War II; ; wwii|ww2|ww-ii|world-war-(ii|2|two|ll)
history; us-presidents; U.S. Presidents; american-history; (us-|u-s-|american-)?presidents?
    |presidential
nonfiction; biography; Biography & Memoir; ; bios?|biograph\w*|auto-?biograph\w*|autobio|memoirs?
    |memiors?|memior
history; american-history; American History; ; american-history|us-history|u-s-history
    |history-american|american-revolution|civil-war
fiction; war-fiction; War Fiction; historical-fiction; military-fiction|war-stories|war
history; military-history; Military History; ; military-history|military|warfare
history; european-history; European History; ; european-history|british-history|english-history
history; world-history; World & Ancient History; ; world-history|ancient|medieval|middle-ages
    |renaissance|microhistory
fiction; historical-fiction; Historical Fiction; ; historical-fiction|historical-fic
    |historicalfiction|historic-fiction|fiction-historical|history-fiction|historical
    |historical-novels?
nonfiction; true-crime; True Crime; ; true-crime
fiction; cozy-mystery; Cozy Mystery; mystery; cozy-myster(y|ies)
fiction; detective; Detective & Police; mystery; detectives?|police|police-procedural
fiction; mystery; Mystery & Crime; ; myster(y|ies)|crime|murder|whodunit
fiction; espionage; Espionage; thriller; espionage|spy|spies|political-thriller
fiction; psychological-thriller; Psychological Thriller; thriller; psychological-thriller
    |psychological
fiction; thriller; Thriller & Suspense; ; thrillers?|suspense|suspence|conspiracy|intrigue
fiction; horror; Horror; ; horror|scary|creepy|spooky|zombies|gothic
fiction; classics; Classics; literary-fiction; classics?|classic-\w+|great-books
fiction; short-stories; Short Stories; literary-fiction; short-stor(y|ies)|shortstories
    |short-fiction|antholog(y|ies)|novellas?|shorts
fiction; chick-lit; Chick Lit & Women's Fiction; contemporary; chick-?lit|chic-lit|women-s-fiction
    |womens-fiction|girly
fiction; coming-of-age; Coming of Age; contemporary; coming-of-age|bildungsroman
fiction; contemporary; Contemporary & Realistic; ; contemporary|realistic|realistic-fiction
    |modern-fiction
fiction; literary-fiction; Literary Fiction; ; literary|literary-fiction|literature|postmodern\w*
    |modernism
fiction; satire; Satire; humor; satire|dark-humou?r
fiction; humor; Humor; ; humou?r|humorous|funny|comedy|comedians|hilarious|laugh-out-loud
fiction; survival; Survival; adventure; survival
fiction; adventure; Adventure & Action; ; adventure|action
fiction; christian-fiction; Christian Fiction; ; christian-fiction|inspirational-fiction
    |religious-fiction
nonfiction; self-help; Self-help; ; self-help|self-improvement|self-development
    |personal-development|personal-growth|motivation(al)?|inspiration(al)?|inspiring
nonfiction; business; Business & Economics; ; business|economics|leadership|management|finance
nonfiction; travel; Travel; ; travel\w*|wanderlust|around-the-world|exploration|road-trip
nonfiction; essays; Essays; ; essays?|creative-nonfiction|criticism
nonfiction; food; Food & Cooking; ; food\w*|cooking|cookbooks?|culinary
nonfiction; journalism; Journalism & Current Affairs; ; journalism|current-events|current-affairs
nonfiction; education; Education & Parenting; ; parenting|education|educational|teaching|motherhood
society; politics; Politics; ; politics|political(-science)?|government|communism|human-rights
society; social-science; Sociology & Anthropology; ; sociology|anthropology|social-sciences?
    |social-issues|social-commentary
society; feminism; Feminism & Gender; ; feminis\w*|gender|gender-studies|women|girl-power
    |strong-women
society; race; Race & Civil Rights; ; race|racism|civil-rights|african-american|black-history
    |slavery|social-justice|diversity|multicultural
science; psychology; Psychology; ; psychology|neuroscience|mental-health
science; health-medicine; Health & Medicine; ; health|medicine|medical
science; nature; Nature & Environment; ; nature|environment|outdoors|biology
science; popular-science; Popular Science; ; science|popular-science|pop-science|technology|physics
    |astronomy
drama; shakespeare; Shakespeare; plays; shakespeare
drama; plays; Plays; ; plays?|theatre|theater
poetry; ; ; ; poetry|poems
comics; manga; Manga; ; manga\w*|anime|manhwa
comics; graphic-novels; Graphic Novels & Comics; ; graphic|graphic-novels?|graphicnovels|comics?
    |comix|comic-books|sequential-art
philosophy-religion; christianity; Christianity; religion; christian\w*|theology|faith|bible
philosophy-religion; religion; Religion & Spirituality; ; religio\w*|spiritual\w*|buddhism|islam
    |judaism|jewish
philosophy-religion; philosophy; Philosophy; ; philosoph\w*|existentialism
arts; music; Music; ; music\w*|rock|rock-n-roll|rock-and-roll|musicians
arts; film-tv; Film & Television; ; film|television|hollywood|celebrit(y|ies)|pop-culture
    |entertainment
arts; writing; Writing & Books about Books; ; writing|books-about-books
arts; art; Art; ; art|arts|art-history|illustrated|fashion|photography
nonfiction; ; ; ; non-?fiction|nonfic|non-fic|true-stor(y|ies)|real-life
fiction; ; ; ; fiction|drama|tragedy
history; ; ; ; history|historic
"""
# Generic shelf tags: dropped when one alternative is a whole hyphen-separated run of the tag.
SHELF_ALTERNATIVES = r"""
to-?read|tbr|to-?buy|to-get|to-purchase|wish-?list|want|need|maybe|might|priority|next|own|owned
    |i-own|have|bought|purchased|borrowed|buy|donated|kindle|e-?books?|audio|audio-?books?|audible
    |listened|nook|kobo|ibooks|pdf|epubs?|calibre|overdrive|scribd|digital|downloaded|paper
    |paperback|hard-?copy|hardcover|hardback|lendable|scanned|signed|free|freebies?|giveaways?|arc
    |netgalley|first-reads|amazon|library|shelf|bookshelf|shelfari|shelved|stuff|misc|finish
    |lost-interest|on-hold|reviewed|other|general|all|default|favou?rites?|favs?|faves?|loved
    |re-?reads?|re-?reading|reads?|reading|finished|unfinished|dnf|abandoned|gave-up|stopped
    |dropped|paused|unread|stars?|meh|amazing|interesting|lol|must-read|recommended|recommendations
    |best|series|sequels?|stand-?alones?|trilog(y|ies)|challenge|rory|gilmore|bbc|guardian
    |modern-library|oprahs?|book-?club|book-?group|botm|skimm|obc|tournament-of-books
    |sword-and-laser|bookcrossing|movies?|for-school|required|classroom|ap-lit|uni|not|done
    |completed|made-me-cry|tear-jerkers?|guilty-pleasures?|brain-candy|fluff|cover-love
    |beautiful-covers|book-boyfriends?|my-\w+|mine
"""
SHELF_WORDS = """
a and bd biblioteca biografia biografias biografie black book books chick classici collection
deutsch development english fantasia favoritos for-fun foreign fun giappone hist home in-english
international just-for-fun krimi life light-reading mind mom murakami musica na narrativa new nf
novel novela novels of people personal psych roman romans school-books self short south spirit
states sub tenho terjemahan the true united work world young
"""
UPPER_WORDS = """YA UK USA US LGBT LGBTQ LGBTQIA GLBT WWII WW2 WWI NYC PNR SF SFF POC WW II"""
PROPER_WORDS = """
afghanistan africa african america american americana asia asian australia australian booker brit
britain british california canada canadian china chinese christian christianity east england europe
european france french german germany harry india indian iran ireland irish islam italian italy
japan japanese jewish latin london mexico nobel paris potter pulitzer regency russia russian
scotland scottish shakespeare spanish victorian vietnam york
"""

DIGITS_OK = re.compile(r"^(\d+(st|nd|rd|th)-century|ww2|world-war-2)$")
EPOCH = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
EVENT_SPAN = int((dt.datetime(2026, 11, 30, 23, 0, tzinfo=dt.UTC) - EPOCH).total_seconds())
STUDY_SET_EPOCH = dt.datetime(2025, 12, 1, tzinfo=dt.UTC)
UPDATED_AT = "2026-06-01T00:00:00Z"
ONE_MINUTE = dt.timedelta(minutes=1)


def table(text):
    """Rows of a ";"-separated table; empty cells are None."""
    rows = []
    for line in text.strip("\n").splitlines():
        if line.startswith(" "):
            rows[-1][-1] += line.strip()
        elif line.strip():
            rows.append([cell.strip() for cell in line.split(";")])
    return [tuple(cell or None for cell in row) for row in rows]


def run_re(alternatives):
    """Regex matching when one alternative is a whole hyphen-separated run of a tag."""
    return re.compile(r"(?:^|-)(?:" + alternatives + r")(?:-|$)")


PUBLISHERS = [name for row in table(PUBLISHERS_TABLE) for name in row]
SUBJECTS = dict(table(SUBJECTS_TABLE))
GRADES = {grade: name for grade, name, _ in table(GRADES_TABLE)}
GRADE_RES = [(grade, run_re(alts)) for grade, _, alts in table(GRADES_TABLE)]
TAXONOMY = table(TAXONOMY_TABLE)
CATEGORIES = {c: (name, subj, parent) for subj, c, name, parent, _ in TAXONOMY if c}
TOPIC_RES = [((subj, c), run_re(alts)) for subj, c, _, _, alts in TAXONOMY]
SHELF_PAT = run_re("".join(SHELF_ALTERNATIVES.split()))
SHELF_EXACT = set(SHELF_WORDS.split())
UPPER = {word.lower(): word for word in UPPER_WORDS.split()}
PROPER = set(PROPER_WORDS.split())


# ------------------------------------------------------------------- helpers
def read_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        yield from csv.DictReader(f)


def slug(text):
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def iso(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def stable_int(text):
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def label_for(tag):
    text = re.sub(r"^u-s-", "us-", tag)
    text = re.sub(r"n-t(-|$)", r"n't\1", re.sub(r"(\w)-s(-|$)", r"\1's\2", text))
    words = [UPPER.get(w, w.capitalize() if w in PROPER else w) for w in text.split("-")]
    words[0] = words[0][:1].upper() + words[0][1:]
    return " ".join(words)


def first_match(rules, tag):
    return next((target for target, pat in rules if pat.search(tag)), None)


def argmax(weights):
    """Key with the largest weight; ties broken by key."""
    return min(weights, key=lambda k: (-weights[k], k)) if weights else None


def write_jsonl_gz(path, records):
    data = "".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in records)
    with (
        open(path, "wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz,
    ):
        gz.write(data.encode("utf-8"))
    return len(records)


# ------------------------------------------------------------------- pipeline
def choose_books(src, n_books):
    """All books with ratings, then the most-shelved (to_read) books, up to n_books."""
    rated = {
        r["book_id"] for r in read_csv(src / "book_coverage.csv") if r["has_all_ratings"] == "True"
    }
    shelved = collections.Counter(r["book_id"] for r in read_csv(src / "to_read.csv"))
    chosen = sorted(rated, key=int)[:n_books]
    for book_id, _ in sorted(shelved.items(), key=lambda kv: (-kv[1], int(kv[0]))):
        if len(chosen) >= n_books:
            break
        if book_id not in rated:
            chosen.append(book_id)
    return set(chosen)


def is_shelf_tag(tag, author_slugs):
    if not re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", tag) or (len(tag) < 3 and tag not in UPPER):
        return True
    if re.search(r"\d", tag) and not DIGITS_OK.match(tag):
        return True  # years, "5-stars", "1001-books", "2015-reading-challenge", ...
    if tag in SHELF_EXACT or SHELF_PAT.search(tag):
        return True
    return tag in author_slugs and first_match(TOPIC_RES, tag) is None


def select_topics(src, books, args):
    """Kept tags, and per-book top tag counts (goodreads ids mapped to book ids)."""
    gr_to_book = {b["goodreads_book_id"]: b["book_id"] for b in books.values()}
    author_slugs = set()
    for b in read_csv(src / "books.csv"):
        for name in b["authors"].split(","):
            parts = slug(name).split("-")
            author_slugs.update({"-".join(parts), "-".join(parts[-1:] + parts[:-1])})
    tag_names = {r["tag_id"]: r["tag_name"] for r in read_csv(src / "tags.csv")}
    counts = collections.defaultdict(dict)  # book_id -> tag_id -> count
    for r in read_csv(src / "book_tags.csv"):
        book_id, count = gr_to_book.get(r["goodreads_book_id"]), max(int(r["count"]), 0)
        if book_id and count > 0:
            counts[book_id][r["tag_id"]] = counts[book_id].get(r["tag_id"], 0) + count
    n_books = collections.Counter(t for tags in counts.values() for t in tags)
    candidates = [
        t
        for t, n in n_books.items()
        if n >= args.min_topic_books and not is_shelf_tag(tag_names[t], author_slugs)
    ]
    kept, labels = {}, set()
    for t in sorted(candidates, key=lambda t: (-n_books[t], int(t)))[: args.max_topics]:
        label = label_for(tag_names[t])
        if label.lower() not in labels:  # e.g. "ya-fiction" vs "ya_fiction": keep the commoner
            labels.add(label.lower())
            kept[t] = (tag_names[t], label)
    return kept, counts


def build_mappings(counts, kept, per_book):
    mappings = {}  # book_id -> [(topic_tag_id, weight)] by weight desc
    for book_id, tags in counts.items():
        top = sorted(
            ((c, t) for t, c in tags.items() if t in kept), key=lambda x: (-x[0], int(x[1]))
        )
        top = top[:per_book]
        if top:
            mx = top[0][0]
            mappings[book_id] = [(t, max(round(c / mx, 4), 0.0001)) for c, t in top]
    return mappings


def classify_topics(kept, mappings):
    """topic tag_id -> [subject, grade, category, broad] keys from the curated rules.

    broad: a subject- or grade-level tag without a category ("fiction", "young-adult").
    """
    out = {}
    for t, (name, _) in kept.items():
        subj, cat = first_match(TOPIC_RES, name) or (None, None)
        grade = first_match(GRADE_RES, name)
        out[t] = [subj, grade, cat, cat is None and (subj or grade) is not None]
    # Unmapped topics: the most common (weighted) subject among their books.
    book_subject = {}
    for book_id, tops in mappings.items():
        w = collections.Counter()
        for t, weight in tops:
            if out[t][0]:
                w[out[t][0]] += weight
        book_subject[book_id] = argmax(w)
    fallback = collections.defaultdict(collections.Counter)
    for book_id, tops in mappings.items():
        for t, weight in tops:
            if book_subject[book_id]:
                fallback[t][book_subject[book_id]] += weight
    for t, v in out.items():
        if v[0] is None:
            v[0] = argmax(fallback[t])
    return out


def build_taxonomy(classes):
    used = {v[2] for v in classes.values() if v[2]}
    used |= {CATEGORIES[c][2] for c in used if CATEGORIES[c][2]}
    categories = [
        {
            "id": f"cat-{k}",
            "name": CATEGORIES[k][0],
            "subjectId": f"subj-{CATEGORIES[k][1]}",
            "parentId": f"cat-{CATEGORIES[k][2]}" if CATEGORIES[k][2] else None,
        }
        for k in sorted(used)
    ]
    subj_used = {v[0] for v in classes.values() if v[0]} | {CATEGORIES[c][1] for c in used}
    subjects = [{"id": f"subj-{k}", "name": SUBJECTS[k]} for k in sorted(subj_used)]
    grade_used = {v[1] for v in classes.values() if v[1]}
    grades = [{"id": f"grade-{k}", "name": GRADES[k]} for k in sorted(grade_used)]
    return subjects, grades, categories


def ref(prefix, key):
    return f"{prefix}-{key}" if key else None


def book_record(b, tops, kept):
    year = b["original_publication_year"]
    parts = [f"By {b['authors']}."]
    if year:
        y = int(float(year))
        parts.append(f"First published in {y if y > 0 else f'{-y} BC'}.")
    parts.append(
        f"Average Goodreads rating {float(b['average_rating']):.2f} "
        f"from {int(b['ratings_count']):,} ratings."
    )
    pub = PUBLISHERS[stable_int(f"publisher:{b['book_id']}") % len(PUBLISHERS)]
    return {
        "id": b["book_id"],
        "publisherId": f"pub-{slug(pub)}",
        "title": (b["original_title"].strip() or b["title"].strip()),
        "description": " ".join(parts),
        "tags": [kept[t][1] for t, _ in tops[:10]],
        "updatedAt": UPDATED_AT,
    }


def load_interactions(src, chosen):
    """Per user, in file order: to_read saves first, then ratings."""
    per_user = collections.defaultdict(list)
    for r in read_csv(src / "to_read.csv"):
        if r["book_id"] in chosen:
            per_user[r["user_id"]].append(("save", r["book_id"], None))
    for r in read_csv(src / "ratings.csv"):
        if r["book_id"] in chosen:
            per_user[r["user_id"]].append(("rate", r["book_id"], int(r["rating"])))
    return per_user


def build_students(per_user, mappings, classes, kept, args):
    ranked = sorted(per_user, key=lambda u: (-len(per_user[u]), int(u)))
    study_sets, events = [], []
    for user in ranked[: args.students]:
        rows = per_user[user]
        n_events = sum(2 if kind == "rate" and rating >= 4 else 1 for kind, _, rating in rows)
        if len(events) + n_events > args.max_events:
            break
        topic_w, subj_w, grade_w = (collections.Counter() for _ in range(3))
        for book_id in {b for _, b, _ in rows}:
            for t, w in mappings.get(book_id, []):
                topic_w[t] += w
                subj, grade = classes[t][:2]
                if subj:
                    subj_w[subj] += w
                if grade:
                    grade_w[grade] += w
        ranked_topics = sorted(topic_w, key=lambda t: (-topic_w[t], int(t)))
        top, seen = [], set()  # skip broad topics, at most one topic per category
        for t in ranked_topics:
            cat, broad = classes[t][2:]
            if not broad and (cat is None or cat not in seen):
                top.append(t)
                seen.add(cat)
        top = (top or ranked_topics)[: args.topics_per_set]
        title = (
            " and ".join(kept[t][1] for t in top[:2]) + " reading list" if top else "Reading list"
        )
        rng = random.Random(f"{args.seed}:{user}")
        ss_id = f"ss-{user}"
        created = STUDY_SET_EPOCH + dt.timedelta(seconds=rng.randrange(30 * 86400))
        study_sets.append(
            {
                "id": ss_id,
                "userId": f"user-{user}",
                "subjectId": ref("subj", argmax(subj_w)),
                "gradeId": ref("grade", argmax(grade_w)),
                "title": title,
                "createdAt": iso(created),
                "topicIds": [f"tag-{t}" for t in top],
            }
        )
        # Distinct 3-minute slots in file order; a rate follows its complete by one minute.
        slots = sorted(rng.sample(range(EVENT_SPAN // 180), len(rows)))
        for (kind, book_id, rating), slot in zip(rows, slots, strict=True):
            at = EPOCH + dt.timedelta(seconds=slot * 180 + rng.randrange(60))
            in_set = [t for t, _ in mappings.get(book_id, []) if t in top]
            topic = f"tag-{in_set[0]}" if in_set else None
            todo = [("s", "save", at)] if kind == "save" else [("r", "rate", at + ONE_MINUTE)]
            if kind == "rate" and rating >= 4:
                todo.insert(0, ("c", "complete", at))
            events.extend(
                {
                    "id": f"ev-{code}-{user}-{book_id}",
                    "studySetId": ss_id,
                    "eventType": event_type,
                    "occurredAt": iso(when),
                    "bookId": book_id,
                    "topicId": topic,
                }
                for code, event_type, when in todo
            )
    events.sort(key=lambda e: (e["occurredAt"], e["id"]))
    return sorted(study_sets, key=lambda s: s["id"]), events


ATTRIBUTION = """# Attribution

This demo data set is derived from **goodbooks-10k** by Zygmunt Zając
(https://github.com/zygmuntz/goodbooks-10k), itself built from public Goodreads data,
and is licensed under the Creative Commons Attribution-ShareAlike 4.0 International
License (CC BY-SA 4.0, see `LICENSE`, https://creativecommons.org/licenses/by-sa/4.0/).
Changes were made: records were selected, transformed and partly synthesized, as follows.
The files here are therefore also shared under CC BY-SA 4.0.

Generated by `scripts/build_demo_data.py` (deterministic); counts are in `manifest.json`.

## Taken from goodbooks-10k (real data)
- Books (2,000): all 1,188 books with ratings, then the most-shelved books of `to_read.csv`.
  Ids (goodbooks `book_id`), titles, authors, first-publication year, average
  rating and ratings count (the last four only inside the synthesized description).
- Topics: Goodreads shelf tags (`tags.csv`) on at least 20 of the chosen books, minus
  generic shelf tags (to-read, owned, kindle, years, reading challenges, author names,
  non-ASCII tags, ...). Labels are the tag names made readable ("science-fiction" ->
  "Science fiction").
- Topic/book mappings: `book_tags.csv` counts, normalised per book to weights in (0, 1].
- Engagement events: `ratings.csv` rows (`rate`, plus `complete` for ratings >= 4) and
  `to_read.csv` rows (`save`) of the chosen students on the chosen books; user ids are the
  goodbooks user ids.

## Synthetic (invented for the demo, not from Goodreads)
- Publishers: invented names, assigned to books by a stable hash of the book id.
- Subjects, grades and categories: a small hand-written map from genre/age tags.
  Subjects of unmapped topics are the most common subject among their books.
- Book descriptions: a plain sentence composed from the real fields above.
- All timestamps (`updatedAt`, `createdAt`, `occurredAt`): the source has none; events are
  spread over 2026-01-01..2026-11-30 keeping each user's file order (saves before ratings).
- Study sets: one per student (the users with the most rows on the chosen books); subject
  and grade are the dominant ones among the topics of the books the student rated or
  shelved, topicIds the top topics by summed weight (skipping broad subject/grade-level tags,
  at most one per category), and the title is built from the first two topic labels.
- Event topicId: the book's highest-weighted topic among its study set's topics (or null).
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--source", type=Path, required=True, help="goodbooks-10k directory")
    ap.add_argument("--out", type=Path, required=True, help="output directory")
    ap.add_argument("--books", type=int, default=2000)
    ap.add_argument("--max-topics", type=int, default=800)
    ap.add_argument("--min-topic-books", type=int, default=20)
    ap.add_argument("--tags-per-book", type=int, default=20)
    ap.add_argument("--students", type=int, default=3000)
    ap.add_argument("--topics-per-set", type=int, default=5)
    ap.add_argument("--max-events", type=int, default=200_000)
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args()
    src, out = args.source, args.out
    out.mkdir(parents=True, exist_ok=True)

    chosen = choose_books(src, args.books)
    books = {b["book_id"]: b for b in read_csv(src / "books.csv") if b["book_id"] in chosen}
    kept, counts = select_topics(src, books, args)
    mappings = build_mappings(counts, kept, args.tags_per_book)
    mapped = {t for tops in mappings.values() for t, _ in tops}
    kept = {t: v for t, v in kept.items() if t in mapped}  # drop topics left without a mapping
    classes = classify_topics(kept, mappings)
    subjects, grades, categories = build_taxonomy(classes)
    topics = [
        {
            "id": f"tag-{t}",
            "label": kept[t][1],
            "subjectId": ref("subj", s),
            "gradeId": ref("grade", g),
            "categoryId": ref("cat", c),
        }
        for t, (s, g, c, _) in classes.items()
    ]
    book_recs = [book_record(b, mappings.get(i, []), kept) for i, b in books.items()]
    used_pubs = {b["publisherId"] for b in book_recs}
    publishers = [
        {"id": f"pub-{slug(p)}", "name": p} for p in PUBLISHERS if f"pub-{slug(p)}" in used_pubs
    ]
    topic_map = [
        {"topicId": f"tag-{t}", "bookId": b, "weight": w}
        for b, tops in mappings.items()
        for t, w in tops
    ]
    study_sets, events = build_students(
        load_interactions(src, chosen), mappings, classes, kept, args
    )

    by_id = lambda r: r["id"]  # noqa: E731
    outputs = {
        "publishers": sorted(publishers, key=by_id),
        "subjects": subjects,
        "grades": grades,
        "categories": categories,
        "topics": sorted(topics, key=by_id),
        "books": sorted(book_recs, key=by_id),
        "topic_book_mappings": sorted(topic_map, key=lambda m: (m["topicId"], m["bookId"])),
        "study_sets": study_sets,
        "engagement_events": events,
    }
    files = {}
    for name, records in outputs.items():
        path = out / f"{name}.jsonl.gz"
        files[path.name] = {
            "records": write_jsonl_gz(path, records),
            "bytes": path.stat().st_size,
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        }
    shutil.copyfile(src / "LICENSE", out / "LICENSE")
    (out / "ATTRIBUTION.md").write_text(ATTRIBUTION, encoding="utf-8")
    params = {k: v for k, v in vars(args).items() if k not in ("source", "out")}
    manifest = {
        "generator": "scripts/build_demo_data.py",
        "source": "goodbooks-10k (Zygmunt Zając)",
        "license": "CC BY-SA 4.0",
        "format": "gzip-compressed JSON Lines, one record per line",
        "parameters": params,
        "synthetic": {
            "publishers": len(PUBLISHERS),
            "bookUpdatedAt": UPDATED_AT,
            "studySetCreatedAt": ["2025-12-01", "2025-12-30"],
            "eventWindow": [iso(EPOCH), iso(EPOCH + dt.timedelta(seconds=EVENT_SPAN))],
        },
        "files": files,
    }
    (out / "manifest.json").write_text(
        json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    for fname, info in files.items():
        print(f"{fname:32} {info['records']:>8} records {info['bytes']:>9} bytes")


if __name__ == "__main__":
    main()
