// $app/navigation: the selector imports goto; the check never navigates.
export const goto = async () => {};
