/**
 * What the API offers today. Limit orders (POST /api/v1/orders with limit_buy/limit_sell,
 * price, time_in_force), cancel (DELETE /api/v1/orders/{id}) and the order stream
 * (GET /api/v1/stream/orders) are in shared/API.md but not yet on the platform: the
 * ticket and the orders page already have their places, switched on here.
 */
export const LIMIT_ORDERS: boolean = false;
export const ORDER_CANCEL: boolean = false;

/** The platform's default MAX_ORDER_VALUE (the API does not publish its setting). */
export const MAX_ORDER_VALUE = "10000.00";
/** Default DAILY_DEPOSIT_LIMIT and DAILY_WITHDRAW_LIMIT (not published by the API). */
export const DAILY_LIMITS = { deposit: "10000.00", withdraw: "5000.00" } as const;
