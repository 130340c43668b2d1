-- Funnel by day: sessions that reached each step on a day (UTC event time), bots left out.
SELECT
    CAST("timestamp" AS DATE) AS event_date,
    count(DISTINCT CASE WHEN event_type = 'page_view' THEN session_id END) AS viewed,
    count(DISTINCT CASE WHEN event_type = 'add_to_cart' THEN session_id END) AS added_to_cart,
    count(DISTINCT CASE WHEN event_type = 'checkout' THEN session_id END) AS checked_out,
    count(DISTINCT CASE WHEN event_type = 'purchase' THEN session_id END) AS purchased
FROM events
WHERE NOT coalesce(is_bot, false)
GROUP BY CAST("timestamp" AS DATE)
ORDER BY event_date
