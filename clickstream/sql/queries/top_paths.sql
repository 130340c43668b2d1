-- Top paths: the first three pages viewed in a session, and how many sessions took each
-- path (NULL: the session viewed fewer pages). Bots left out. A session is its session_id,
-- else the device's anonymous_id, else the user (as the API counts).
WITH views AS (
    SELECT
        coalesce(session_id, anonymous_id, user_id) AS session_key,
        page,
        row_number() OVER (PARTITION BY coalesce(session_id, anonymous_id, user_id) ORDER BY "timestamp", event_id) AS step
    FROM events
    WHERE event_type = 'page_view'
        AND coalesce(session_id, anonymous_id, user_id) IS NOT NULL
        AND page IS NOT NULL
        AND NOT coalesce(is_bot, false)
),
paths AS (
    SELECT
        session_key,
        max(CASE WHEN step = 1 THEN page END) AS first_page,
        max(CASE WHEN step = 2 THEN page END) AS second_page,
        max(CASE WHEN step = 3 THEN page END) AS third_page
    FROM views
    WHERE step <= 3
    GROUP BY session_key
)
SELECT first_page, second_page, third_page, count(*) AS sessions
FROM paths
GROUP BY first_page, second_page, third_page
ORDER BY sessions DESC, first_page, second_page NULLS LAST, third_page NULLS LAST
LIMIT 25
