-- Retention cohorts: users by the day of their first event, and on how many of them were
-- active again N days later (N = 0 is the cohort's size). Bots and anonymous events left out.
WITH activity AS (
    SELECT DISTINCT user_id, CAST("timestamp" AS DATE) AS active_date
    FROM events
    WHERE user_id IS NOT NULL AND NOT coalesce(is_bot, false)
),
cohorts AS (
    SELECT user_id, min(active_date) AS cohort_date
    FROM activity
    GROUP BY user_id
)
SELECT
    cohorts.cohort_date,
    date_diff('day', cohorts.cohort_date, activity.active_date) AS days_since_first,
    count(*) AS users
FROM activity
JOIN cohorts ON cohorts.user_id = activity.user_id
GROUP BY cohorts.cohort_date, date_diff('day', cohorts.cohort_date, activity.active_date)
ORDER BY cohorts.cohort_date, days_since_first
