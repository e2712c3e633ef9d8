import { createContext, useContext, useEffect, useState, type ReactNode } from "react";
import { loadTheme, saveTheme, type ThemeChoice } from "../lib/preferences";

interface ThemeValue {
  choice: ThemeChoice;
  resolved: "light" | "dark";
  choose: (choice: ThemeChoice) => void;
}

const ThemeContext = createContext<ThemeValue | null>(null);

function systemDark(): boolean {
  return typeof window.matchMedia === "function" && window.matchMedia("(prefers-color-scheme: dark)").matches;
}

/** System default, switchable; follows the system while the choice is "system". */
export function ThemeChoiceProvider({ children }: { children: ReactNode }) {
  const [choice, setChoice] = useState<ThemeChoice>(loadTheme);
  const [dark, setDark] = useState(systemDark);
  useEffect(() => {
    if (typeof window.matchMedia !== "function") return;
    const query = window.matchMedia("(prefers-color-scheme: dark)");
    const update = () => {
      setDark(query.matches);
    };
    query.addEventListener("change", update);
    return () => {
      query.removeEventListener("change", update);
    };
  }, []);
  const resolved = choice === "system" ? (dark ? "dark" : "light") : choice;
  useEffect(() => {
    document.documentElement.style.colorScheme = resolved;
  }, [resolved]);
  const choose = (next: ThemeChoice) => {
    saveTheme(next);
    setChoice(next);
  };
  return <ThemeContext.Provider value={{ choice, resolved, choose }}>{children}</ThemeContext.Provider>;
}

export function useThemeChoice(): ThemeValue {
  const value = useContext(ThemeContext);
  if (!value) throw new Error("useThemeChoice outside ThemeChoiceProvider");
  return value;
}
