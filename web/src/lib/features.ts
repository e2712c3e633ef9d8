/**
 * Parts of the API the app uses that a deployment might not serve yet: limit orders
 * (POST /api/v1/orders with limit_buy/limit_sell, price, time_in_force) and cancel
 * (DELETE /api/v1/orders/{id}). Both are on the platform now.
 */
export const LIMIT_ORDERS: boolean = true;
export const ORDER_CANCEL: boolean = true;

/** The platform's default MAX_ORDER_VALUE (the API does not publish its setting). */
export const MAX_ORDER_VALUE = "10000.00";
/** Default DAILY_DEPOSIT_LIMIT and DAILY_WITHDRAW_LIMIT (not published by the API). */
export const DAILY_LIMITS = { deposit: "10000.00", withdraw: "5000.00" } as const;
