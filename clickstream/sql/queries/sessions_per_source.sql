-- Sessions per source: the referrer's host on a session's first event ('(direct)' when it
-- had none), and how many of those sessions purchased. Bots left out. A session is its
-- session_id, else the device's anonymous_id, else the user (as the API counts).
WITH ranked AS (
    SELECT
        coalesce(session_id, anonymous_id, user_id) AS session_key,
        referrer,
        event_type,
        row_number() OVER (PARTITION BY coalesce(session_id, anonymous_id, user_id) ORDER BY "timestamp", event_id) AS step
    FROM events
    WHERE coalesce(session_id, anonymous_id, user_id) IS NOT NULL AND NOT coalesce(is_bot, false)
),
sessions AS (
    SELECT
        session_key,
        max(CASE WHEN step = 1 THEN referrer END) AS landing_referrer,
        count(CASE WHEN event_type = 'purchase' THEN 1 END) AS purchases
    FROM ranked
    GROUP BY session_key
)
SELECT
    -- regexp_extract answers '' (DuckDB) or NULL (Athena) when nothing matches
    coalesce(
        nullif(regexp_extract(landing_referrer, '^[A-Za-z][A-Za-z0-9+.-]*://([^/:?#]+)', 1), ''),
        landing_referrer,
        '(direct)'
    ) AS source,
    count(*) AS sessions,
    count(CASE WHEN purchases > 0 THEN 1 END) AS purchasing_sessions
FROM sessions
GROUP BY 1
ORDER BY sessions DESC, source
